"""Segment's tracking API, driven by Segment's own Python client (`segment-analytics-python`, unchanged)
at the stack served over HTTP: every call type lands as its native event, exactly once, including
the client's retries of requests whose answers were lost."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
from segment.analytics import Client
from segops.ingestion.events import event_id_for
from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error
from tests.support.ingestion import error_rows, stored_events
from tests.support.served import LossyProxy


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _segment_client(url: str, key: str, errors: list[Any]) -> Client:
    return Client(
        write_key=key, host=url, on_error=lambda exc, _batch: errors.append(exc), upload_interval=0.05, max_retries=5
    )


def test_every_call_of_the_real_segment_client_lands_as_its_native_event(
    stack: LocalStack, served: str, account: Account
) -> None:
    # GIVEN Segment's Python client pointed at the stack with a SegOps key as its write key
    errors: list[Any] = []
    client = _segment_client(served, account.api_key, errors)
    # WHEN it sends each kind of call
    client.identify("user-1", {"email": "jane@example.com", "plan": "pro"})
    client.track("user-1", "Order Completed", {"total": 89.95}, message_id="order-1")
    client.page(
        "user-1", "Docs", "Pricing", {"path": "/pricing", "url": "https://acme.test/pricing", "title": "Pricing"}
    )
    client.screen("user-1", "App", "Home")
    client.group("user-1", "acme-inc", {"seats": 12})
    client.track(anonymous_id="anon-7", event="Product Viewed", properties={"sku": "s-1"})
    client.alias("anon-7", "user-1")
    client.flush()
    client.shutdown()
    stack.bus.drain()
    # THEN each is one event, mapped as docs/ingestion.md says
    assert errors == []
    rows = {
        (r["user_id"], r["event_type"]): orjson.loads(r["payload"]) for r in stored_events(stack, account.tenant_id)
    }
    assert set(rows) == {
        ("user-1", "context_identified"),
        ("user-1", "order_completed"),
        ("user-1", "page_viewed"),
        ("user-1", "screen_viewed"),
        ("user-1", "group_identified"),
        ("anon-7", "product_viewed"),
        ("user-1", "user_aliased"),
    }
    assert rows["user-1", "context_identified"] == {"email": "jane@example.com", "plan": "pro"}
    assert rows["user-1", "order_completed"] == {"total": 89.95, "event_name": "Order Completed"}
    assert rows["user-1", "page_viewed"] == {
        "path": "/pricing",
        "url": "https://acme.test/pricing",
        "title": "Pricing",
        "name": "Pricing",
        "category": "Docs",
    }
    assert rows["anon-7", "product_viewed"] == {"sku": "s-1", "event_name": "Product Viewed", "anonymous_id": "anon-7"}
    assert rows["user-1", "user_aliased"] == {"previous_id": "anon-7"}
    order = next(r for r in stored_events(stack, account.tenant_id) if r["event_type"] == "order_completed")
    assert order["event_id"] == event_id_for(account.tenant_id, "order-1")


def test_client_retries_after_lost_answers_store_each_message_once(
    stack: LocalStack, served: str, account: Account
) -> None:
    # GIVEN a proxy that lets the first two requests reach the stack but loses the stack's answers
    proxy = LossyProxy(served, lose=2)
    errors: list[Any] = []
    client = _segment_client(proxy.url, account.api_key, errors)
    try:
        # WHEN 30 events are tracked (the client stamps a messageId on each) and flushed
        for n in range(30):
            client.track(f"user-{n}", "Button Clicked", {"n": n})
        client.flush()
        client.shutdown()
    finally:
        proxy.close()
    # THEN the stack accepted every attempt, the client retried the lost ones, and each event is stored once
    assert errors == []
    assert len(proxy.upstream_statuses) >= 3 and set(proxy.upstream_statuses) == {200}
    stack.bus.drain()
    rows = stored_events(stack, account.tenant_id)
    assert sorted(r["user_id"] for r in rows) == sorted(f"user-{n}" for n in range(30))


def test_single_calls_answer_success_and_refusals_are_native(api: Api, stack: LocalStack, account: Account) -> None:
    ok = api.post("/v1/track", {"userId": "u1", "event": "Signed Up"}, headers=_basic(account.api_key))
    assert ok.status_code == 200 and ok.get_json() == {"success": True}
    refused = api.post("/v1/track", {"userId": "u1"}, headers=_basic(account.api_key))
    body = assert_error(refused, 400)
    assert body["details"]["errors"][0]["type"] == "invalid_event_type"
    batch = {"batch": [{"type": "track", "userId": "u2", "event": "A"}, {"type": "track", "event": "B"}]}
    assert api.post("/v1/batch", batch, headers=_basic(account.api_key)).get_json() == {"success": True}
    assert api.post("/v1/import", {"batch": "nope"}, headers=_basic(account.api_key)).status_code == 400
    stack.bus.drain()
    assert sorted(r["user_id"] for r in stored_events(stack, account.tenant_id)) == ["u1", "u2"]
    assert [(r["error_type"], r["source"]) for r in error_rows(stack, account.tenant_id)] == [
        ("invalid_event_type", "segment"),
        ("invalid_user_id", "segment"),
        ("invalid_body", "segment"),
    ]
    stats = api.get("/api/ingestion/stats/?window=24h", headers=account.key).get_json()
    assert stats["total_events"] == 2


def test_a_message_nested_too_deep_is_refused_alone(api: Api, stack: LocalStack, account: Account) -> None:
    # GIVEN a batch whose first message's properties nest 300 levels (past what orjson writes)
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(299):
        deep = {"a": deep}
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "Deep", "properties": deep}]}
    batch["batch"].append({"type": "track", "userId": "u2", "event": "Shallow"})
    # WHEN it is sent (written by the standard library, as orjson cannot)
    answer = api.post(
        "/v1/batch", data=json.dumps(batch), content_type="application/json", headers=_basic(account.api_key)
    )
    stack.bus.drain()
    # THEN success as Segment's clients expect, the deep one recorded, the other stored
    assert answer.status_code == 200 and answer.get_json() == {"success": True}
    assert [(r["error_type"], r["source"]) for r in error_rows(stack, account.tenant_id)] == [
        ("invalid_payload", "segment")
    ]
    assert [r["user_id"] for r in stored_events(stack, account.tenant_id)] == ["u2"]


def test_the_write_key_must_be_a_member_key_of_the_tenant(api: Api, account: Account) -> None:
    message = {"userId": "u1", "event": "E"}
    assert_error(api.post("/v1/track", message), 401)
    assert_error(api.post("/v1/track", message, headers=_basic("sk_live_" + "x" * 43)), 401)
    assert_error(api.post("/v1/track", message, headers={"Authorization": "Basic !!!"}), 401)
    # the native scheme is not what Segment clients send: refused with the usual 401
    assert_error(api.post("/v1/track", message, headers=account.key), 401)
    viewer = api.post("/api/keys/", {"name": "ro", "role": "viewer"}, headers=account.bearer).get_json()["key"]
    assert_error(api.post("/v1/batch", {"batch": [message]}, headers=_basic(viewer)), 403)
