"""Ingestion as real clients send it: gzip bodies (RudderStack's default), analytics.js's `text/plain`
bodies with the write key inside them (its `fetch`/`sendBeacon` transport, on its one-letter paths),
RudderStack's own Python SDK, and `alias` as an identity mapping."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import orjson
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segops.ingestion.events import event_id_for
from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error
from tests.support.ingestion import error_rows, stored_events
from tests.support.served import LossyProxy

SHOP = "https://shop.example.com"


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _gzip_post(api: Api, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return api.client.post(
        path, data=body, headers=headers | {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("path", "auth", "body"),
    [
        ("/api/ingestion/track/batch/", "native", {"events": [{"user_id": "u1", "event_type": "signed_up"}]}),
        ("/v1/batch", "basic", {"batch": [{"type": "track", "userId": "u1", "event": "Signed Up"}]}),
    ],
)
def test_gzip_bodies_are_accepted_natively_and_on_v1(
    api: Api, stack: LocalStack, account: Account, path: str, auth: str, body: dict[str, Any]
) -> None:
    headers = account.key if auth == "native" else _basic(account.api_key)
    response = _gzip_post(api, path, gzip.compress(orjson.dumps(body)), headers)
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    stack.bus.drain()
    assert [(r["user_id"], r["event_type"]) for r in stored_events(stack, account.tenant_id)] == [("u1", "signed_up")]


def test_a_gzip_body_is_bounded_once_inflated_and_malformed_ones_are_refused(
    api: Api, stack: LocalStack, account: Account
) -> None:
    # GIVEN a 6 MiB batch that compresses to a few KiB (over the 5 MiB batch bound only once inflated)
    padding = "x" * 1024
    bomb = orjson.dumps({"events": [{"user_id": "u", "event_type": "e", "payload": {"p": padding}}] * 6144})
    compressed = gzip.compress(bomb)
    assert len(compressed) < 100_000
    too_large = assert_error(_gzip_post(api, "/api/ingestion/track/batch/", compressed, account.key), 413)
    assert "decompressed" in too_large["message"]
    # AND bodies that claim gzip but are not, or are cut short, or carry trailing bytes
    good = gzip.compress(orjson.dumps({"userId": "u", "event": "E"}))
    for broken in (b"not gzip at all", good[:-9], good + b"junk"):
        refused = assert_error(_gzip_post(api, "/v1/track", broken, _basic(account.api_key)), 400)
        assert refused["details"]["errors"][0]["type"] == "invalid_encoding"
    # AND an encoding the endpoints do not speak
    other = api.client.post("/api/ingestion/track/", data=b"{}", headers=account.key | {"Content-Encoding": "br"})
    assert_error(other, 415)
    # THEN nothing was stored and each refusal is recorded against the tenant, with its source
    stack.bus.drain()
    assert stored_events(stack, account.tenant_id) == []
    assert [(r["error_type"], r["source"]) for r in error_rows(stack, account.tenant_id)] == [
        ("body_too_large", "api"),
        ("invalid_encoding", "segment"),
        ("invalid_encoding", "segment"),
        ("invalid_encoding", "segment"),
        ("unsupported_encoding", "api"),
    ]


def _beacon(api: Api, path: str, body: dict[str, Any], origin: str | None = None) -> Any:
    """What analytics.js sends: a `text/plain` JSON body (no preflight), the write key inside it."""
    headers = {"Content-Type": "text/plain"} | ({"Origin": origin} if origin else {})
    return api.client.post(path, data=orjson.dumps(body), headers=headers)


def test_analytics_js_text_plain_bodies_with_the_write_key_inside(
    api: Api, stack: LocalStack, account: Account
) -> None:
    sent_at = "2026-12-01T10:00:00.000Z"
    single = {
        "writeKey": account.api_key,
        "type": "track",
        "event": "Button Clicked",
        "anonymousId": "anon-1",
        "messageId": "ajs-1",
        "timestamp": sent_at,
        "sentAt": sent_at,
        "context": {"library": {"name": "analytics.js"}},
    }
    assert _beacon(api, "/v1/t", single).get_json() == {"success": True}
    page = {"type": "page", "anonymousId": "anon-1", "messageId": "ajs-2", "properties": {"path": "/"}}
    batch = {"writeKey": account.api_key, "sentAt": sent_at, "batch": [page]}
    assert _beacon(api, "/v1/b", batch).get_json() == {"success": True}
    # a retry of the first (same messageId) is accepted and stored once
    assert _beacon(api, "/v1/t", single).status_code == 200
    # without a write key anywhere, or with an unknown one: 401
    assert_error(_beacon(api, "/v1/t", single | {"writeKey": ""}), 401)
    assert_error(_beacon(api, "/v1/t", single | {"writeKey": "sk_live_" + "x" * 43}), 401)
    assert_error(api.client.post("/v1/t", data=b"not json", headers={"Content-Type": "text/plain"}), 401)
    stack.bus.drain()
    rows = stored_events(stack, account.tenant_id)
    assert sorted((r["user_id"], r["event_type"]) for r in rows) == [
        ("anon-1", "button_clicked"),
        ("anon-1", "page_viewed"),
    ]
    clicked = next(r for r in rows if r["event_type"] == "button_clicked")
    assert clicked["event_id"] == event_id_for(account.tenant_id, "ajs-1")


def test_an_analytics_js_batch_with_a_title_cut_inside_an_emoji_is_stored_whole(
    api: Api, stack: LocalStack, account: Account
) -> None:
    # GIVEN what analytics.js sends for a page whose title it cut inside an emoji: its JSON.stringify
    # escapes the lone surrogate, and the write key is in that same body
    pages = [
        {"type": "page", "anonymousId": "anon-7", "messageId": f"ajs-{i}", "properties": {"title": title}}
        for i, title in enumerate(["Sale \ud83d", "Home"])
    ]
    body = json.dumps({"writeKey": account.api_key, "batch": pages}).encode()
    assert b"\\ud83d" in body
    # WHEN it is sent as a beacon
    response = api.client.post("/v1/b", data=body, headers={"Content-Type": "text/plain"})
    stack.bus.drain()
    # THEN the key is read and both pages are stored, the lone surrogate as U+FFFD
    assert response.get_json() == {"success": True}
    titles = sorted(orjson.loads(r["payload"])["title"] for r in stored_events(stack, account.tenant_id))
    assert titles == ["Home", "Sale \ufffd"]


def test_a_publishable_write_key_in_the_body_counts_only_from_its_origins(
    api: Api, stack: LocalStack, account: Account
) -> None:
    created = api.post(
        "/api/keys/", {"name": "web", "kind": "publishable", "allowed_origins": [SHOP]}, headers=account.bearer
    ).get_json()
    message = {"writeKey": created["key"], "type": "track", "event": "Viewed", "anonymousId": "a1"}
    allowed = _beacon(api, "/v1/t", message, origin=SHOP)
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == SHOP
    refused = _beacon(api, "/v1/t", message, origin="https://evil.example.net")
    assert_error(refused, 403)
    assert "Access-Control-Allow-Origin" not in refused.headers
    # an Authorization header wins over the body: a native ApiKey scheme stays refused on /v1
    assert_error(api.client.post("/v1/t", data=orjson.dumps(message), headers=account.key), 401)
    stack.bus.drain()
    assert [r["user_id"] for r in stored_events(stack, account.tenant_id)] == ["a1"]


def _rudder_client(url: str, key: str, errors: list[Any]) -> RudderClient:
    # gzip is RudderStack's default; stated here so the test keeps exercising it
    return RudderClient(
        write_key=key,
        host=url,
        gzip=True,
        on_error=lambda exc, _batch: errors.append(exc),
        upload_interval=0.05,
        max_retries=5,
    )


def test_the_real_rudderstack_client_lands_every_call_once_including_retries(
    stack: LocalStack, served: str, account: Account
) -> None:
    # GIVEN RudderStack's Python SDK pointed at the stack through a proxy that loses two answers
    proxy = LossyProxy(served, lose=2)
    errors: list[Any] = []
    client = _rudder_client(proxy.url, account.api_key, errors)
    try:
        # WHEN it sends each kind of call, then 20 tracks
        client.identify("user-1", {"email": "jane@example.com"})
        client.track("user-1", "Order Completed", {"total": 12.5}, message_id="order-1")
        client.group("user-1", "acme", {"seats": 3})
        client.alias("anon-9", "user-1")
        for n in range(20):
            client.track(anonymous_id=f"anon-{n}", event="Product Viewed", properties={"n": n})
        client.flush()
        client.shutdown()
    finally:
        proxy.close()
    # THEN the client retried the lost answers and each call is stored once, mapped as documented
    assert errors == []
    assert len(proxy.upstream_statuses) >= 3 and set(proxy.upstream_statuses) == {200}
    stack.bus.drain()
    rows = stored_events(stack, account.tenant_id)
    assert len(rows) == 24
    by_type = {(r["user_id"], r["event_type"]): orjson.loads(r["payload"]) for r in rows}
    assert by_type["user-1", "context_identified"] == {"email": "jane@example.com"}  # from context.traits
    assert by_type["user-1", "order_completed"] == {"total": 12.5, "event_name": "Order Completed"}
    assert by_type["user-1", "group_identified"] == {"seats": 3, "group_id": "acme"}
    assert by_type["user-1", "user_aliased"] == {"previous_id": "anon-9"}
    assert sorted(r["user_id"] for r in rows if r["event_type"] == "product_viewed") == sorted(
        f"anon-{n}" for n in range(20)
    )


def _aliases(stack: LocalStack, tenant_id: int) -> list[tuple[str, str]]:
    rows = stack.runtime.warehouse.query(
        "SELECT previous_id, user_id FROM user_aliases WHERE tenant_id = {t:UInt64} ORDER BY previous_id",
        {"t": tenant_id},
    ).rows
    return [(str(previous), str(user)) for previous, user in rows]


def test_alias_maps_the_previous_id_to_the_user_latest_alias_winning(
    api: Api, stack: LocalStack, account: Account
) -> None:
    # GIVEN an anonymous visitor's events, then two aliases of that id (the later one wins)
    headers = _basic(account.api_key)
    batch = {
        "batch": [
            {"type": "track", "anonymousId": "anon-1", "event": "Viewed", "timestamp": "2026-11-30T10:00:00Z"},
            {"type": "alias", "previousId": "anon-1", "userId": "u-old", "timestamp": "2026-11-30T11:00:00Z"},
            {"type": "alias", "previousId": "anon-1", "userId": "u-new", "timestamp": "2026-11-30T12:00:00Z"},
            {"type": "alias", "previousId": "anon-2", "userId": "u-new", "messageId": "al-2"},
        ]
    }
    assert api.post("/v1/batch", batch, headers=headers).get_json() == {"success": True}
    # AND a retry of one alias, and another tenant's alias of the same id
    api.post("/v1/alias", {"previousId": "anon-2", "userId": "u-new", "messageId": "al-2"}, headers=headers)
    other = api.signup()
    api.post("/v1/alias", {"previousId": "anon-1", "userId": "theirs"}, headers=_basic(other.api_key))
    stack.bus.drain()
    # THEN each previous id maps to one user of its own tenant; the anonymous events stay under their id
    assert _aliases(stack, account.tenant_id) == [("anon-1", "u-new"), ("anon-2", "u-new")]
    assert _aliases(stack, other.tenant_id) == [("anon-1", "theirs")]
    assert [r["user_id"] for r in stored_events(stack, account.tenant_id) if r["event_type"] == "viewed"] == ["anon-1"]
