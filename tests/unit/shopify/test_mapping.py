"""Topic → event mapping on the Shopify fixtures (no HTTP): exact ids, numeric money."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segops.shopify.mapping import MappedEvent, Unmapped, exact_id, map_webhook, money

from tests.support.fixtures import ShopifyWebhook, load_fixture, shopify_webhooks


def test_order_ids_are_parsed_exactly() -> None:
    mapped = map_webhook("orders/create", load_fixture("shopify/orders-create"), None)
    assert isinstance(mapped, MappedEvent)
    # 820982911946154508 is not representable as a double: float parsing would give ...500 or ...512
    assert float(820982911946154508) != 820982911946154508
    assert mapped.order_id == "820982911946154508"
    assert mapped.user_id == "115310627314723954"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("403.00", 403.0), ("0.10", 0.1), (12, 12.0), ("abc", None), (None, None), (True, None), ("NaN", None)],
)
def test_money(value: object, expected: float | None) -> None:
    assert money(value) == expected


def test_exact_id_rejects_non_ids() -> None:
    assert exact_id(True) is None and exact_id(1.5) is None and exact_id("12a") is None
    assert exact_id("18446744073709551615") == "18446744073709551615"


def test_topics_map_to_documented_events() -> None:
    order = load_fixture("shopify/orders-create")
    expected = {
        "orders/create": "order_placed",
        "orders/paid": "order_paid",
        "orders/cancelled": "order_cancelled",
        "orders/fulfilled": "order_fulfilled",
        "orders/updated": "order_updated",
        "checkouts/create": "checkout_started",
        "checkouts/update": "checkout_updated",
    }
    for topic, event_type in expected.items():
        mapped = map_webhook(topic, order, "2026-04-25T14:21:11.000Z")
        assert isinstance(mapped, MappedEvent) and mapped.event_type == event_type
    customer = map_webhook("customers/update", load_fixture("shopify/customers-create"), None)
    assert isinstance(customer, MappedEvent) and customer.event_type == "context_identified"
    assert isinstance(map_webhook("app/uninstalled", {}, None), Unmapped)
    assert isinstance(map_webhook("orders/create", [1], None), Unmapped)


# What a parsed body can hold (orjson reads an integer beyond 64 bits as a double).
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(shopify_webhooks()), data=st.data())
def test_any_json_in_any_field_of_a_signed_body_maps_or_is_unmapped(case: ShopifyWebhook, data: st.DataObject) -> None:
    # GIVEN a real webhook body whose fields (top level, and inside its objects and lists) hold any JSON
    # (a verified body is answered 200 whatever it holds: a 500 makes Shopify retry it for 48 hours)
    body = orjson.loads(case.body)
    for key in data.draw(st.sets(st.sampled_from(sorted(body)))):
        body[key] = data.draw(JSON)
    for value in [v for v in body.values() if isinstance(v, dict)] + [
        item for v in body.values() if isinstance(v, list) for item in v if isinstance(item, dict)
    ]:
        for key in data.draw(st.sets(st.sampled_from(sorted(value) or [""]))):
            value[key] = data.draw(JSON)
    # WHEN it is mapped THEN it is an event (whose payload the edge can write) or a recorded refusal
    mapped = map_webhook(case.topic, body, "2026-12-01T10:00:00Z")
    assert isinstance(mapped, MappedEvent | Unmapped)
    if isinstance(mapped, MappedEvent):
        orjson.dumps(mapped.payload)
