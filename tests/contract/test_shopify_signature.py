"""Shopify's HMAC contract: the fixture signatures (made by Shopify's algorithm) verify; any change does not."""

from __future__ import annotations

import orjson
import pytest
from segops.shopify.signature import sign, verify

from tests.support.fixtures import SHOPIFY_SECRET, ShopifyWebhook, shopify_webhooks


def test_the_fixtures_cover_every_sampled_topic() -> None:
    assert {case.topic for case in shopify_webhooks()} == {
        "orders/create",
        "orders/paid",
        "orders/cancelled",
        "refunds/create",
        "customers/create",
        "customers/update",
        "checkouts/create",
    }


@pytest.mark.parametrize("case", shopify_webhooks(), ids=lambda c: c.name)
def test_fixture_signatures_verify_over_the_raw_bytes(case: ShopifyWebhook) -> None:
    header = case.headers["X-Shopify-Hmac-SHA256"]
    assert verify(SHOPIFY_SECRET, case.body, header)
    assert sign(SHOPIFY_SECRET, case.body) == header
    # re-serialising the JSON (what a framework parsing first would do) breaks the signature
    assert not verify(SHOPIFY_SECRET, orjson.dumps(orjson.loads(case.body)) + b" ", header)
    assert not verify(SHOPIFY_SECRET + "x", case.body, header)
    assert not verify(SHOPIFY_SECRET, case.body, None)
    assert not verify(SHOPIFY_SECRET, case.body, "")
