"""Shopify webhooks end to end: signed fixtures accepted and mapped; anything unverifiable is a 401."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from segops.localstack import LocalStack
from segops.shopify.signature import sign
from segops.shopify.webhook import dedupe_id

from tests.support.api import Account, Api, assert_error
from tests.support.ingestion import error_rows, stored_events
from tests.support.log_secrets import watch

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify"
INDEX = orjson.loads((FIXTURES / "index.json").read_bytes())
SECRET: str = INDEX["secret"]
watch(SECRET)
CASES: list[dict[str, Any]] = INDEX["cases"]


def _case(topic: str) -> tuple[bytes, dict[str, str]]:
    case = next(c for c in CASES if c["headers"]["X-Shopify-Topic"] == topic)
    return (FIXTURES / case["body_file"]).read_bytes(), dict(case["headers"])


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


def test_every_fixture_is_accepted_and_mapped(stack: LocalStack, api: Api, shop: Account) -> None:
    # GIVEN the signed fixtures, sent byte for byte in order
    for case in CASES:
        body = (FIXTURES / case["body_file"]).read_bytes()
        response = _post(api, shop.tenant_slug, body, case["headers"])
        # THEN each is acknowledged with 200
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() == {"received": True, "queued": 1}
        stack.bus.drain()
    events = _by_type(stack, shop.tenant_id)
    assert set(events) == {"order_placed", "context_identified", "order_refunded"}
    # orders/create → order_placed for the customer id, exact ids, numeric money
    order = events["order_placed"]
    placed = orjson.loads(order["payload"])
    assert order["user_id"] == "115310627314723954"
    assert placed["order_id"] == "820982911946154508"
    assert placed["total"] == 403.0 and placed["subtotal"] == 388.0 and placed["currency"] == "USD"
    assert placed["total_discounts"] == 20.0
    assert [i["price"] for i in placed["line_items"]] == [199.0, 199.0]
    assert placed["line_items"][0]["line_item_id"] == "866550311766439020"
    assert order["message_id"] == dedupe_id("orders/create", (FIXTURES / CASES[0]["body_file"]).read_bytes())
    assert order["occurred_at"].isoformat() == "2026-04-25T14:21:11+00:00"
    # customers/create → context_identified (user properties)
    customer = events["context_identified"]
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
    assert_error(_post(api, slug, body, headers), 401, "unauthorized")
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


def test_checkout_falls_back_to_email_as_user(stack: LocalStack, api: Api, shop: Account) -> None:
    body = orjson.dumps(
        {"token": "abc", "email": "Ann@Example.com", "total_price": "12.50", "currency": "EUR", "line_items": []}
    )
    headers = {"X-Shopify-Topic": "checkouts/create", "X-Shopify-Hmac-SHA256": sign(SECRET, body)}
    assert _post(api, shop.tenant_slug, body, headers).status_code == 200
    stack.bus.drain()
    [row] = stored_events(stack, shop.tenant_id)
    assert row["event_type"] == "checkout_started" and row["user_id"] == "ann@example.com"
    assert orjson.loads(row["payload"])["total"] == 12.5


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
    invited = api.post(
        f"/api/tenants/{shop.tenant_id}/members/", {"email": stranger.email, "role": "member"}, headers=shop.bearer
    )
    assert invited.status_code == 201, invited.get_data(as_text=True)
    as_member = {**stranger.bearer, "X-SegOps-Tenant": str(shop.tenant_id)}
    assert_error(api.put(path, {"secret": "member-secret"}, headers=as_member), 403)
    # deleting it makes every webhook a 401
    assert api.delete(path, headers=shop.bearer).status_code == 204
    body, hdrs = _case("orders/create")
    assert_error(_post(api, shop.tenant_slug, body, hdrs), 401)
