"""Shopify webhooks end to end: signed fixtures accepted and mapped; anything unverifiable is a 401."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from segops.limits import plans
from segops.localstack import LocalStack
from segops.shopify.signature import sign
from segops.shopify.webhook import dedupe_id

from tests.support.api import Account, Api, assert_error
from tests.support.fixtures import SHOPIFY_SECRET as SECRET
from tests.support.fixtures import ShopifyWebhook, shopify_webhook, shopify_webhooks
from tests.support.ingestion import error_rows, stored_events
from tests.support.log_secrets import watch

watch(SECRET)


def _case(topic: str) -> tuple[bytes, dict[str, str]]:
    case = shopify_webhook(topic)
    return case.body, dict(case.headers)


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


@pytest.fixture
def shop(api: Api) -> Account:
    account = api.signup(slug="acme-shop")
    response = api.put(
        f"/api/tenants/{account.tenant_id}/integrations/shopify/", {"secret": SECRET}, headers=account.bearer
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return account


def _post(api: Api, slug: str, body: bytes, headers: dict[str, str]) -> Any:
    return api.post(
        f"/api/ingestion/shopify/{slug}/", data=body, headers={**headers, "Content-Type": "application/json"}
    )


def _by_type(stack: LocalStack, tenant_id: int) -> dict[str, dict[str, Any]]:
    return {row["event_type"]: row for row in stored_events(stack, tenant_id)}


def _send(stack: LocalStack, api: Api, shop: Account, case: ShopifyWebhook) -> None:
    response = _post(api, shop.tenant_slug, case.body, case.headers)
    # THEN each is acknowledged with 200 and queues one event
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"received": True, "queued": 1}
    stack.bus.drain()


def test_every_fixture_is_accepted_and_mapped(stack: LocalStack, api: Api, shop: Account) -> None:
    # GIVEN the signed fixtures, sent byte for byte in order
    for case in shopify_webhooks():
        _send(stack, api, shop, case)
    stored = stored_events(stack, shop.tenant_id)
    assert sorted(row["event_type"] for row in stored) == sorted(
        ["order_placed", "order_paid", "order_cancelled", "order_refunded"]
        + ["context_identified"] * 2
        + ["checkout_started"]
    )
    events = _by_type(stack, shop.tenant_id)
    # orders/create → order_placed for the customer id, exact ids, numeric money
    order = events["order_placed"]
    placed = orjson.loads(order["payload"])
    assert order["user_id"] == "115310627314723954"
    assert placed["order_id"] == "820982911946154508"
    assert placed["total"] == 403.0 and placed["subtotal"] == 388.0 and placed["currency"] == "USD"
    assert placed["total_discounts"] == 20.0
    assert [i["price"] for i in placed["line_items"]] == [199.0, 199.0]
    assert placed["line_items"][0]["line_item_id"] == "866550311766439020"
    assert order["message_id"] == dedupe_id("orders/create", shopify_webhook("orders/create").body)
    assert order["occurred_at"].isoformat() == "2026-04-25T14:21:11+00:00"
    # customers/create → context_identified (user properties)
    created = dedupe_id("customers/create", shopify_webhook("customers/create").body)
    [customer] = [r for r in stored if r["event_type"] == "context_identified" and r["message_id"] == created]
    assert customer["user_id"] == "706405506930370084"
    props = orjson.loads(customer["payload"])
    assert props["email"] == "bob@biller.com" and props["total_spent"] == 0.0 and props["accepts_marketing"] is True
    # refunds/create → order_refunded, attributed to the order's customer
    refund = events["order_refunded"]
    refunded = orjson.loads(refund["payload"])
    assert refund["user_id"] == "115310627314723954"
    assert refunded["amount"] == 199.0 and refunded["order_id"] == "820982911946154508"
    assert refunded["refund_id"] == "890088186047892319"
    assert error_rows(stack, shop.tenant_id) == []


def test_orders_paid_is_order_paid_at_the_trigger_time(stack: LocalStack, api: Api, shop: Account) -> None:
    # GIVEN the signed orders/paid fixture WHEN it is the only webhook received
    _send(stack, api, shop, shopify_webhook("orders/paid"))
    # THEN one order_paid event for the customer, with the discount code and exact ids
    [row] = stored_events(stack, shop.tenant_id)
    paid = orjson.loads(row["payload"])
    assert (row["event_type"], row["user_id"]) == ("order_paid", "115310627314723954")
    assert row["message_id"] == dedupe_id("orders/paid", shopify_webhook("orders/paid").body)
    # a payment happens when Shopify says so, not when the order was created
    assert row["occurred_at"].isoformat() == "2026-04-25T14:24:40+00:00"
    assert paid["order_id"] == "820982911946154508" and paid["financial_status"] == "paid"
    assert paid["total"] == 403.0 and paid["discount_codes"] == ["SPRING20"] and paid["item_count"] == 2


def test_orders_cancelled_is_order_cancelled_at_cancelled_at(stack: LocalStack, api: Api, shop: Account) -> None:
    _send(stack, api, shop, shopify_webhook("orders/cancelled"))
    [row] = stored_events(stack, shop.tenant_id)
    cancelled = orjson.loads(row["payload"])
    assert (row["event_type"], row["user_id"]) == ("order_cancelled", "115310627314723954")
    assert row["occurred_at"].isoformat() == "2026-04-27T12:03:19+00:00"
    # 450789469123456789 is past 2^53: kept exact, never rounded through a double
    assert cancelled["order_id"] == "450789469123456789"
    assert cancelled["cancel_reason"] == "customer" and cancelled["financial_status"] == "voided"
    assert cancelled["total"] == 199.0 and cancelled["item_count"] == 1 and cancelled["discount_codes"] == []


def test_customers_update_replaces_the_user_properties(stack: LocalStack, api: Api, shop: Account) -> None:
    # GIVEN a customer created, then updated (unsubscribed, now a VIP with two orders)
    _send(stack, api, shop, shopify_webhook("customers/create"))
    _send(stack, api, shop, shopify_webhook("customers/update"))
    rows = stored_events(stack, shop.tenant_id)
    assert [(r["event_type"], r["user_id"]) for r in rows] == [("context_identified", "706405506930370084")] * 2
    # THEN the later context_identified carries the updated properties, at the customer's updated_at
    latest = rows[-1]
    assert latest["occurred_at"].isoformat() == "2026-04-28T20:02:45+00:00"
    props = orjson.loads(latest["payload"])
    assert props["email"] == "bob.biller@example.com" and props["accepts_marketing"] is False
    assert props["orders_count"] == 2 and props["total_spent"] == 598.5 and props["tags"] == "vip, newsletter"
    assert props["phone"] == "+16135550142"


def test_checkouts_create_is_checkout_started_for_the_email(stack: LocalStack, api: Api, shop: Account) -> None:
    # GIVEN a guest checkout (no customer object): the user is the lowercased email
    _send(stack, api, shop, shopify_webhook("checkouts/create"))
    [row] = stored_events(stack, shop.tenant_id)
    started = orjson.loads(row["payload"])
    assert (row["event_type"], row["user_id"]) == ("checkout_started", "ann.lee@example.com")
    assert row["occurred_at"].isoformat() == "2026-04-28T15:15:07+00:00"
    assert started["checkout_token"] == "b1946ac92492d2347c6235b4d2611184"
    assert started["total"] == 12.5 and started["currency"] == "EUR"
    [item] = started["line_items"]
    assert item["product_id"] == "788032119674292922" and item["quantity"] == 2 and item["price"] == 6.25


def test_same_event_id_twice_is_one_event(stack: LocalStack, api: Api, shop: Account) -> None:
    body, headers = _case("orders/create")
    for _ in range(2):
        assert _post(api, shop.tenant_slug, body, headers).status_code == 200
        stack.bus.drain()
    assert len(stored_events(stack, shop.tenant_id)) == 1


def test_a_replayed_signed_body_with_fresh_header_ids_is_stored_once(
    stack: LocalStack, api: Api, shop: Account
) -> None:
    # GIVEN one signed body, replayed with new (unsigned) event and webhook ids, or none at all
    body, headers = _case("customers/create")
    for replay in range(3):
        forged = {**headers, "X-Shopify-Event-Id": f"replay-{replay}", "X-Shopify-Webhook-Id": f"wh-replay-{replay}"}
        if replay == 2:
            del forged["X-Shopify-Event-Id"], forged["X-Shopify-Webhook-Id"]
        assert _post(api, shop.tenant_slug, body, forged).status_code == 200
    stack.bus.drain()
    # THEN the event is stored once, keyed by the signed body
    [row] = stored_events(stack, shop.tenant_id)
    assert row["message_id"] == dedupe_id("customers/create", body)


@pytest.mark.parametrize("case", ["tampered body", "wrong signature", "missing header", "unknown slug", "no secret"])
def test_unverifiable_webhooks_are_401_and_publish_nothing(
    stack: LocalStack, api: Api, shop: Account, case: str
) -> None:
    body, headers = _case("orders/create")
    slug = shop.tenant_slug
    if case == "tampered body":
        body = body.replace(b'"total_price":"403.00"', b'"total_price":"0.01"')
    elif case == "wrong signature":
        headers["X-Shopify-Hmac-SHA256"] = sign("some-other-secret", body)
    elif case == "missing header":
        del headers["X-Shopify-Hmac-SHA256"]
    elif case == "unknown slug":
        slug = "no-such-shop"
    elif case == "no secret":
        slug = api.signup(slug="unconfigured").tenant_slug
    published = stack.bus.published_count
    refused = _post(api, slug, body, headers)
    assert_error(refused, 401, "unauthorized")
    # the challenge names what authenticates a webhook: its signature, not a token or an API key
    assert refused.headers["WWW-Authenticate"] == 'X-Shopify-Hmac-Sha256 realm="segops"'
    assert stack.bus.published_count == published
    stack.bus.drain()
    assert stored_events(stack, shop.tenant_id) == []


def test_rotated_secret_refuses_the_old_signature(api: Api, shop: Account) -> None:
    body, headers = _case("orders/create")
    path = f"/api/tenants/{shop.tenant_id}/integrations/shopify/"
    assert api.put(path, {"secret": "a-brand-new-secret"}, headers=shop.bearer).status_code == 200
    assert_error(_post(api, shop.tenant_slug, body, headers), 401)
    headers["X-Shopify-Hmac-SHA256"] = sign("a-brand-new-secret", body)
    assert _post(api, shop.tenant_slug, body, headers).status_code == 200


def test_bad_signature_is_recorded_for_the_tenant(stack: LocalStack, api: Api, shop: Account) -> None:
    body, headers = _case("orders/create")
    headers["X-Shopify-Hmac-SHA256"] = sign("wrong", body)
    for _ in range(3):
        assert_error(_post(api, shop.tenant_slug, body, headers), 401)
    assert [r["error_type"] for r in error_rows(stack, shop.tenant_id)] == ["shopify_bad_signature"]
    # AND it is not a refused event on the tenant's bill: anyone can post an unsigned body
    assert _refused_events_billed(api, shop) == 0


def _refused_events_billed(api: Api, shop: Account) -> int:
    report = api.get("/api/usage/", headers=shop.bearer).get_json()
    return int(report["totals"]["events_refused"])


def test_over_the_events_quota_a_webhook_is_acknowledged_and_recorded_not_stored(
    stack: LocalStack, api: Api, shop: Account
) -> None:
    # GIVEN a month whose events quota one order uses up
    plans.set_plan(stack.runtime, shop.tenant_id, {"events_per_month": 1})
    _send(stack, api, shop, shopify_webhook("orders/create"))
    # WHEN Shopify delivers the next webhook
    body, headers = _case("customers/create")
    response = _post(api, shop.tenant_slug, body, headers)
    # THEN it is acknowledged with nothing queued: an error answer would have Shopify retry it for hours
    # and then delete the subscription (the integration would be gone after the month too)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"received": True, "queued": 0}
    stack.bus.drain()
    assert [row["event_type"] for row in stored_events(stack, shop.tenant_id)] == ["order_placed"]
    # AND the refusal is recorded where the tenant reads what was refused, not billed as a refused event
    [recorded] = error_rows(stack, shop.tenant_id)
    assert recorded["error_type"] == "quota_exceeded" and recorded["detail"].startswith("1 event(s) refused")
    assert _refused_events_billed(api, shop) == 0


def test_unknown_topic_is_accepted_and_recorded(stack: LocalStack, api: Api, shop: Account) -> None:
    body = b'{"id": 1, "title": "New product"}'
    headers = {"X-Shopify-Topic": "products/create", "X-Shopify-Hmac-SHA256": sign(SECRET, body)}
    response = _post(api, shop.tenant_slug, body, headers)
    assert response.status_code == 200 and response.get_json() == {"received": True, "queued": 0}
    stack.bus.drain()
    assert stored_events(stack, shop.tenant_id) == []
    [row] = error_rows(stack, shop.tenant_id)
    assert row["error_type"] == "shopify_unknown_topic" and "products/create" in row["detail"]


def test_refund_for_an_unknown_order_is_recorded_not_stored(stack: LocalStack, api: Api, shop: Account) -> None:
    body, headers = _case("refunds/create")
    assert _post(api, shop.tenant_slug, body, headers).get_json() == {"received": True, "queued": 0}
    stack.bus.drain()
    assert stored_events(stack, shop.tenant_id) == []
    assert [r["error_type"] for r in error_rows(stack, shop.tenant_id)] == ["shopify_unknown_customer"]


def test_secret_is_write_only_and_admin_only(stack: LocalStack, api: Api, shop: Account) -> None:
    path = f"/api/tenants/{shop.tenant_id}/integrations/shopify/"
    shown = api.get(path, headers=shop.bearer)
    assert shown.status_code == 200
    assert shown.get_json()["secret_set"] is True
    assert shown.get_json()["webhook_path"] == "/api/ingestion/shopify/acme-shop/"
    assert SECRET not in shown.get_data(as_text=True)
    # another tenant's owner cannot read or set it
    stranger = api.signup()
    assert_error(api.put(path, {"secret": "hijacked-secret"}, headers=stranger.bearer), 404)
    # a member cannot set it
    as_member = api.add_member(shop, stranger, "member")
    assert_error(api.put(path, {"secret": "member-secret"}, headers=as_member), 403)
    # deleting it makes every webhook a 401
    assert api.delete(path, headers=shop.bearer).status_code == 204
    body, hdrs = _case("orders/create")
    assert_error(_post(api, shop.tenant_slug, body, hdrs), 401)


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        (
            "orders/create",
            {"id": 11, "created_at": "2026-12-01T10:00:00Z", "customer": {"id": 42}, "discount_codes": 5},
        ),
        ("refunds/create", {"id": 12, "order_id": 820982911946154508, "transactions": 7, "refund_line_items": 7}),
    ],
)
def test_a_signed_body_with_odd_field_types_is_acknowledged(
    stack: LocalStack, api: Api, shop: Account, topic: str, body: dict[str, Any]
) -> None:
    # GIVEN a verified webhook whose lists are numbers (a 500 would make Shopify retry it for 48 hours)
    raw = orjson.dumps(body)
    response = _post(api, shop.tenant_slug, raw, {"X-Shopify-Topic": topic, "X-Shopify-Hmac-SHA256": sign(SECRET, raw)})
    # THEN it is acknowledged, the odd fields read as empty lists
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["received"] is True


def test_a_large_order_keeps_the_items_that_fit_and_its_refund_finds_the_customer(
    stack: LocalStack, api: Api, shop: Account
) -> None:
    # GIVEN an order of 250 line items: its mapped payload is past the 32 KiB event bound
    body, headers = _case("orders/create")
    order = orjson.loads(body)
    item = order["line_items"][0]
    order["line_items"] = [{**item, "id": item["id"] + i, "title": f"Item number {i:03d}"} for i in range(250)]
    raw = orjson.dumps(order)
    signed = {k: v for k, v in headers.items() if k.lower() not in ("x-shopify-hmac-sha256", "x-shopify-webhook-id")}
    signed |= {"X-Shopify-Hmac-Sha256": sign(SECRET, raw), "X-Shopify-Webhook-Id": "big-order"}
    # WHEN Shopify sends it, then a refund of it
    assert _post(api, shop.tenant_slug, raw, signed).get_json() == {"received": True, "queued": 1}
    refund, refund_headers = _case("refunds/create")
    assert orjson.loads(refund)["order_id"] == order["id"]
    assert _post(api, shop.tenant_slug, refund, refund_headers).get_json() == {"received": True, "queued": 1}
    stack.bus.drain()
    # THEN the order is stored with the items that fit, says it was cut, and keeps its whole count
    placed = _by_type(stack, shop.tenant_id)["order_placed"]
    payload = orjson.loads(placed["payload"])
    assert payload["line_items_truncated"] is True and 0 < len(payload["line_items"]) < 250
    assert payload["item_count"] == 250 * item["quantity"]
    assert len(placed["payload"].encode()) <= 32 * 1024
    # AND its refund is stored for the same customer
    assert _by_type(stack, shop.tenant_id)["order_refunded"]["user_id"] == placed["user_id"]
