"""Sample payloads kept as JSON files under `tests/fixtures/`, loaded by name (`"shopify/orders-create"`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    """The file's exact bytes (a signed webhook body must be sent as stored)."""
    path = (FIXTURES_DIR / f"{name}.json").resolve()
    if not path.is_relative_to(FIXTURES_DIR):
        raise ValueError(f"fixture {name!r} is outside {FIXTURES_DIR}")
    return path.read_bytes()


def load_fixture(name: str) -> Any:
    return orjson.loads(fixture_bytes(name))


@dataclass(frozen=True)
class ShopifyWebhook:
    """One signed case of `tests/fixtures/shopify/index.json`: what Shopify would POST."""

    name: str
    topic: str
    body: bytes
    headers: dict[str, str]


SHOPIFY_INDEX: dict[str, Any] = load_fixture("shopify/index")
SHOPIFY_SECRET: str = SHOPIFY_INDEX["secret"]


def shopify_webhooks() -> list[ShopifyWebhook]:
    found = []
    for case in SHOPIFY_INDEX["cases"]:
        name = "shopify/" + str(case["body_file"]).removesuffix(".json")
        headers = dict(case["headers"])
        found.append(ShopifyWebhook(name, headers["X-Shopify-Topic"], fixture_bytes(name), headers))
    return found


def shopify_webhook(topic: str) -> ShopifyWebhook:
    return next(case for case in shopify_webhooks() if case.topic == topic)
