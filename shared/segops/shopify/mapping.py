"""Shopify topic → SegOps event (the table in docs/shopify.md).

Ids are kept exact: orjson parses 64-bit integers as Python ints, and they are stored as decimal
strings (`"820982911946154508"`), because JSON consumers that read numbers as doubles (JavaScript,
`JSONExtractFloat`) would round them. Prices arrive as strings and become JSON numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

ORDER_EVENTS = {
    "orders/create": "order_placed",
    "orders/paid": "order_paid",
    "orders/cancelled": "order_cancelled",
    "orders/fulfilled": "order_fulfilled",
    "orders/partially_fulfilled": "order_partially_fulfilled",
    "orders/updated": "order_updated",
}
CUSTOMER_TOPICS = ("customers/create", "customers/update")
CHECKOUT_EVENTS = {"checkouts/create": "checkout_started", "checkouts/update": "checkout_updated"}
REFUND_TOPIC = "refunds/create"


@dataclass(frozen=True)
class MappedEvent:
    """A client-shaped event (validated by the same edge rules as `track`); `user_id` may need lookup."""

    event_type: str
    user_id: str | None
    occurred_at: str | None
    payload: dict[str, Any]
    order_id: str | None = None


@dataclass(frozen=True)
class Unmapped:
    error_type: str
    detail: str


def exact_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    return None


def money(value: Any) -> float | None:
    """ "403.00" → 403.0 (via Decimal, so only well-formed amounts pass); numbers pass through."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            return None
        return float(amount) if amount.is_finite() else None
    return None


def fit_line_items(payload: dict[str, Any], limit: int) -> dict[str, Any]:
    """`payload` within `limit` bytes as JSON: a large order keeps as many of its `line_items` as fit,
    in order, and says so (`line_items_truncated`); its totals and `item_count` stay whole. A payload
    that fits, or has no items to shed, is returned as it is."""
    items = payload.get("line_items")
    if not isinstance(items, list) or len(orjson.dumps(payload)) <= limit:
        return payload
    fits, fails = 0, len(items)  # the longest prefix that fits lies in [fits, fails)
    while fails - fits > 1:
        middle = (fits + fails) // 2
        trial = {**payload, "line_items": items[:middle], "line_items_truncated": True}
        if len(orjson.dumps(trial)) <= limit:
            fits = middle
        else:
            fails = middle
    return {**payload, "line_items": items[:fits], "line_items_truncated": True}


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _list(value: Any) -> list[Any]:
    """A webhook field that should be a list; anything else (a signed body may hold any JSON) as none."""
    return value if isinstance(value, list) else []


def _line_items(items: Any) -> list[dict[str, Any]]:
    return [
        _compact(
            {
                "line_item_id": exact_id(item.get("id")),
                "product_id": exact_id(item.get("product_id")),
                "variant_id": exact_id(item.get("variant_id")),
                "sku": item.get("sku") or None,
                "title": item.get("title"),
                "quantity": item.get("quantity"),
                "price": money(item.get("price")),
            }
        )
        for item in _list(items)
        if isinstance(item, dict)
    ]


def _customer_user(body: dict[str, Any]) -> str | None:
    customer = body.get("customer")
    if isinstance(customer, dict):
        found = exact_id(customer.get("id"))
        if found:
            return found
        if isinstance(customer.get("email"), str) and customer["email"]:
            return str(customer["email"]).lower()
    for field in ("email", "contact_email"):
        if isinstance(body.get(field), str) and body[field]:
            return str(body[field]).lower()
    return None


def _first_text(body: dict[str, Any], *fields: str) -> str | None:
    for field in fields:
        value = body.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def _order(event_type: str) -> Callable[[dict[str, Any], str | None], MappedEvent]:
    def build(body: dict[str, Any], triggered_at: str | None) -> MappedEvent:
        items = _line_items(body.get("line_items"))
        codes = [c.get("code") for c in _list(body.get("discount_codes")) if isinstance(c, dict) and c.get("code")]
        order_id = exact_id(body.get("id"))
        payload = _compact(
            {
                "order_id": order_id,
                "order_number": body.get("order_number"),
                "name": body.get("name"),
                "total": money(body.get("total_price")),
                "subtotal": money(body.get("subtotal_price")),
                "total_tax": money(body.get("total_tax")),
                "total_discounts": money(body.get("total_discounts")),
                "currency": body.get("currency"),
                "financial_status": body.get("financial_status"),
                "fulfillment_status": body.get("fulfillment_status"),
                "cancel_reason": body.get("cancel_reason"),
                "email": body.get("email") or body.get("contact_email"),
                "source_name": body.get("source_name"),
                "test": body.get("test"),
                "item_count": sum(i.get("quantity") or 0 for i in items if isinstance(i.get("quantity"), int)),
                "line_items": items,
                "discount_codes": codes,
            }
        )
        when = (
            {
                "order_placed": _first_text(body, "created_at"),
                "order_cancelled": _first_text(body, "cancelled_at"),
            }.get(event_type)
            or triggered_at
            or _first_text(body, "updated_at", "created_at")
        )
        return MappedEvent(event_type, _customer_user(body), when, payload, order_id)

    return build


def _customer(body: dict[str, Any], triggered_at: str | None) -> MappedEvent:
    consent = body.get("email_marketing_consent")
    payload = _compact(
        {
            "shopify_customer_id": exact_id(body.get("id")),
            "email": body.get("email"),
            "first_name": body.get("first_name"),
            "last_name": body.get("last_name"),
            "phone": body.get("phone"),
            "state": body.get("state"),
            "tags": body.get("tags"),
            "currency": body.get("currency"),
            "orders_count": body.get("orders_count"),
            "total_spent": money(body.get("total_spent")),
            "verified_email": body.get("verified_email"),
            "accepts_marketing": consent.get("state") == "subscribed" if isinstance(consent, dict) else None,
        }
    )
    user = exact_id(body.get("id")) or (str(body["email"]).lower() if body.get("email") else None)
    return MappedEvent(
        "context_identified", user, _first_text(body, "updated_at", "created_at") or triggered_at, payload
    )


def _refund(body: dict[str, Any], triggered_at: str | None) -> MappedEvent:
    transactions = [t for t in _list(body.get("transactions")) if isinstance(t, dict)]
    refunded = [t for t in transactions if t.get("kind") == "refund" and t.get("status") in (None, "success")]
    amounts = [a for a in (money(t.get("amount")) for t in refunded) if a is not None]
    items = [
        _compact(
            {
                "line_item_id": exact_id(i.get("line_item_id")),
                "quantity": i.get("quantity"),
                "subtotal": money(i.get("subtotal")),
            }
        )
        for i in _list(body.get("refund_line_items"))
        if isinstance(i, dict)
    ]
    order_id = exact_id(body.get("order_id"))
    payload = _compact(
        {
            "refund_id": exact_id(body.get("id")),
            "order_id": order_id,
            "amount": round(sum(amounts), 2),
            "currency": next((t.get("currency") for t in refunded if t.get("currency")), None),
            "restock": body.get("restock"),
            "line_items": items,
        }
    )
    when = _first_text(body, "processed_at", "created_at") or triggered_at
    return MappedEvent("order_refunded", _customer_user(body), when, payload, order_id)


def _checkout(event_type: str) -> Callable[[dict[str, Any], str | None], MappedEvent]:
    def build(body: dict[str, Any], triggered_at: str | None) -> MappedEvent:
        payload = _compact(
            {
                "checkout_token": body.get("token"),
                "total": money(body.get("total_price")),
                "subtotal": money(body.get("subtotal_price")),
                "currency": body.get("currency") or body.get("presentment_currency"),
                "line_items": _line_items(body.get("line_items")),
                "email": body.get("email"),
            }
        )
        when = triggered_at or _first_text(body, "updated_at", "created_at")
        return MappedEvent(event_type, _customer_user(body), when, payload)

    return build


MAPPERS: dict[str, Callable[[dict[str, Any], str | None], MappedEvent]] = {
    **{topic: _order(event) for topic, event in ORDER_EVENTS.items()},
    **dict.fromkeys(CUSTOMER_TOPICS, _customer),
    **{topic: _checkout(event) for topic, event in CHECKOUT_EVENTS.items()},
    REFUND_TOPIC: _refund,
}


def map_webhook(topic: str, body: Any, triggered_at: str | None) -> MappedEvent | Unmapped:
    """The event for a webhook, or why none is produced (recorded, still acknowledged to Shopify)."""
    mapper = MAPPERS.get(topic)
    if mapper is None:
        return Unmapped(
            "shopify_unknown_topic", f"topic {topic[:100]!r} is not mapped to an event; accepted, not stored"
        )
    if not isinstance(body, dict):
        return Unmapped("shopify_invalid_payload", f"topic {topic}: body is not a JSON object")
    return mapper(body, triggered_at)
