"""Shopify's HMAC contract: the fixture signatures (made by Shopify's algorithm) verify; any change does not."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from segops.shopify.signature import sign, verify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
INDEX = orjson.loads((FIXTURES / "index.json").read_bytes())


@pytest.mark.parametrize("case", INDEX["cases"], ids=lambda c: c["body_file"])
def test_fixture_signatures_verify_over_the_raw_bytes(case: dict[str, object]) -> None:
    body = (FIXTURES / str(case["body_file"])).read_bytes()
    header = case["headers"]["X-Shopify-Hmac-SHA256"]  # type: ignore[index]
    assert verify(INDEX["secret"], body, header)
    assert sign(INDEX["secret"], body) == header
    # re-serialising the JSON (what a framework parsing first would do) breaks the signature
    assert not verify(INDEX["secret"], orjson.dumps(orjson.loads(body)) + b" ", header)
    assert not verify(INDEX["secret"] + "x", body, header)
    assert not verify(INDEX["secret"], body, None)
    assert not verify(INDEX["secret"], body, "")
