"""Track and batch through HTTP and the bus: refusals are precise and recorded; valid events land once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from segops.ingestion.events import MAX_PAYLOAD_DEPTH
from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error
from tests.support.ingestion import error_rows, stored_events

TRACK = "/api/ingestion/track/"
BATCH = "/api/ingestion/track/batch/"


def _future(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _nested(levels: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        payload = {"a": payload}
    return payload


# (case, bad event, error_type, field named in the detail)
BAD_EVENTS: list[tuple[str, Any, str, str]] = [
    ("missing user_id", {"event_type": "page_viewed"}, "invalid_user_id", "user_id: is required"),
    ("empty user_id", {"user_id": "", "event_type": "page_viewed"}, "invalid_user_id", "user_id: must not be empty"),
    (
        "overlong user_id",
        {"user_id": "u" * 257, "event_type": "page_viewed"},
        "invalid_user_id",
        "user_id: must be at most 256 characters",
    ),
    (
        "numeric user_id",
        {"user_id": 42, "event_type": "page_viewed"},
        "invalid_user_id",
        "user_id: must be a string",
    ),
    (
        "control char in user_id",
        {"user_id": "user\x00-1", "event_type": "page_viewed"},
        "invalid_user_id",
        "user_id: must not contain control characters",
    ),
    (
        "newline in user_id",
        {"user_id": "user\n1", "event_type": "page_viewed"},
        "invalid_user_id",
        "user_id: must not contain control characters",
    ),
    ("bad event_type", {"user_id": "u", "event_type": "Order Placed"}, "invalid_event_type", "event_type: must be"),
    ("digit-first event_type", {"user_id": "u", "event_type": "1st_visit"}, "invalid_event_type", "event_type:"),
    ("missing event_type", {"user_id": "u"}, "invalid_event_type", "event_type: is required"),
    (
        "array payload",
        {"user_id": "u", "event_type": "e", "payload": [1, 2]},
        "invalid_payload",
        "payload: must be a JSON object",
    ),
    (
        "33 KiB payload",
        {"user_id": "u", "event_type": "e", "payload": {"blob": "x" * (33 * 1024)}},
        "payload_too_large",
        "payload:",
    ),
    (
        "unparsable occurred_at",
        {"user_id": "u", "event_type": "e", "occurred_at": "yesterday at noon"},
        "invalid_occurred_at",
        "occurred_at: not an ISO 8601 timestamp",
    ),
    (
        "far-future occurred_at",
        {"user_id": "u", "event_type": "e", "occurred_at": _future(25)},
        "invalid_occurred_at",
        "occurred_at: more than 24 h in the future",
    ),
    (
        "numeric occurred_at",
        {"user_id": "u", "event_type": "e", "occurred_at": 1714000000},
        "invalid_occurred_at",
        "occurred_at: must be a string",
    ),
    (
        "payload nested one level too deep",
        {"user_id": "u", "event_type": "e", "payload": _nested(MAX_PAYLOAD_DEPTH + 1)},
        "invalid_payload",
        f"payload: nests more than {MAX_PAYLOAD_DEPTH} levels",
    ),
    ("unknown field", {"user_id": "u", "event_type": "e", "userId": "u"}, "unknown_field", "userId: unknown field"),
    ("event is not an object", ["u", "e"], "invalid_event", "must be a JSON object"),
]


def _valid(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"user_id": f"{tag}-{i}", "event_type": "page_viewed", "payload": {"path": f"/p/{i}", "n": i}} for i in range(n)
    ]


@pytest.mark.parametrize(("case", "event", "error_type", "detail"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_track_refuses_invalid_event_with_400_and_records_it(
    stack: LocalStack, api: Api, account: Account, case: str, event: Any, error_type: str, detail: str
) -> None:
    # GIVEN an invalid event   WHEN it is tracked
    response = api.post(TRACK, event, headers=account.key)
    # THEN 400 naming the field, one error record, nothing published or stored
    error = assert_error(response, 400, "validation_failed")
    assert error["details"]["errors"][0]["type"] == error_type
    assert detail in error["message"]
    rows = error_rows(stack, account.tenant_id)
    assert [(r["error_type"], r["source"]) for r in rows] == [(error_type, "api")]
    assert detail in rows[0]["detail"]
    assert stack.bus.published_count == 0


@pytest.mark.parametrize(("case", "event", "error_type", "detail"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_batch_skips_invalid_event_and_keeps_every_valid_one(
    stack: LocalStack, api: Api, account: Account, case: str, event: Any, error_type: str, detail: str
) -> None:
    # GIVEN a batch with valid events around one invalid event
    events = [*_valid(2, "before"), event, *_valid(3, "after")]
    # WHEN it is sent and the bus delivers
    response = api.post(BATCH, {"events": events}, headers=account.key)
    stack.bus.drain()
    # THEN 5 queued, 1 skipped, the skip recorded with its index, and each valid event stored once
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"queued": 5, "skipped": 1}
    rows = error_rows(stack, account.tenant_id)
    assert [r["error_type"] for r in rows] == [error_type]
    assert rows[0]["detail"].startswith("events[2] ") and detail in rows[0]["detail"]
    stored = stored_events(stack, account.tenant_id)
    assert sorted(e["user_id"] for e in stored) == sorted(
        e["user_id"] for e in [*_valid(2, "before"), *_valid(3, "after")]
    )


def test_a_payload_deeper_than_orjson_writes_is_refused_alone(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN a payload of 300 levels, which parses (orjson reads 1,024) but orjson cannot write (254):
    # it used to fail the whole request with a 500, the valid events beside it lost
    deep = {"user_id": "deep", "event_type": "e", "payload": _nested(300)}
    events = [*_valid(1, "before"), deep, *_valid(1, "after")]
    # WHEN it is tracked alone, then sent in a batch (written by the standard library, as orjson cannot)
    alone = api.post(TRACK, data=json.dumps(deep), content_type="application/json", headers=account.key)
    batch = api.post(BATCH, data=json.dumps({"events": events}), content_type="application/json", headers=account.key)
    stack.bus.drain()
    # THEN the event is refused and recorded each time, and the batch's valid events are stored
    assert assert_error(alone, 400, "validation_failed")["details"]["errors"][0]["type"] == "invalid_payload"
    assert batch.status_code == 202 and batch.get_json() == {"queued": 2, "skipped": 1}
    assert [r["error_type"] for r in error_rows(stack, account.tenant_id)] == ["invalid_payload"] * 2
    assert sorted(e["user_id"] for e in stored_events(stack, account.tenant_id)) == ["after-0", "before-0"]


def test_a_string_cut_inside_an_emoji_costs_nothing_else(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN a batch as a browser sends it: JavaScript's JSON.stringify escapes the lone surrogate of a
    # title cut inside an emoji ("Sale 😀".slice(0, 6) keeps the emoji's high surrogate alone), which no
    # UTF-8 text can hold
    title = "Sale \ud83d"
    # (and an integer beyond 64 bits, read as orjson reads it: a double)
    cut = {"user_id": "browser", "event_type": "page_viewed", "payload": {"title": title, "ok": "😀", "n": 2**64}}
    body = json.dumps({"events": [*_valid(1, "before"), cut, *_valid(1, "after")]}).encode()
    assert b'"Sale \\ud83d"' in body
    # WHEN it is sent, with a byte order mark in front as .NET clients write one
    response = api.post(BATCH, data=b"\xef\xbb\xbf" + body, content_type="application/json", headers=account.key)
    stack.bus.drain()
    # THEN every event is stored, the lone surrogate read as U+FFFD (as Segment's API reads it)
    assert response.status_code == 202 and response.get_json() == {"queued": 3, "skipped": 0}
    stored = {e["user_id"]: orjson.loads(e["payload"]) for e in stored_events(stack, account.tenant_id)}
    assert sorted(stored) == ["after-0", "before-0", "browser"]
    assert stored["browser"] == {"title": "Sale \ufffd", "ok": "😀", "n": float(2**64)}
    assert error_rows(stack, account.tenant_id) == []


def test_track_event_lands_in_clickhouse_with_stamps(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN the documented example event   WHEN it is tracked and delivered
    body = {
        "user_id": "user-123",
        "event_type": "order_placed",
        "occurred_at": "2026-04-25T14:32:00Z",
        "payload": {"order_id": "ord-456", "total": 89.95, "currency": "USD"},
    }
    before = datetime.now(UTC)
    response = api.post(TRACK, body, headers=account.key)
    stack.bus.drain()
    # THEN 202 {"queued": true} and exactly that row, with a receive stamp
    assert response.status_code == 202
    assert response.get_json() == {"queued": True}
    [row] = stored_events(stack, account.tenant_id)
    assert row["user_id"] == "user-123" and row["event_type"] == "order_placed"
    assert row["occurred_at"] == datetime(2026, 4, 25, 14, 32, tzinfo=UTC)
    assert before - timedelta(seconds=1) <= row["received_at"] <= datetime.now(UTC)
    assert orjson.loads(row["payload"]) == body["payload"]
    assert row["message_id"] == ""


def test_naive_occurred_at_is_utc_and_missing_defaults_to_receive_time(
    stack: LocalStack, api: Api, account: Account
) -> None:
    events = [
        {"user_id": "naive", "event_type": "e", "occurred_at": "2026-01-02T03:04:05.678"},
        {"user_id": "offset", "event_type": "e", "occurred_at": "2026-01-02T05:04:05+02:00"},
        {"user_id": "default", "event_type": "e"},
    ]
    assert api.post(BATCH, {"events": events}, headers=account.key).get_json() == {"queued": 3, "skipped": 0}
    stack.bus.drain()
    rows = {r["user_id"]: r for r in stored_events(stack, account.tenant_id)}
    assert rows["naive"]["occurred_at"] == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert rows["offset"]["occurred_at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows["default"]["occurred_at"] == rows["default"]["received_at"]


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status", "code", "error_type"),
    [
        ("not JSON", b'{"events": [', "application/json", 400, "validation_failed", "invalid_json"),
        (
            "not UTF-8",
            b'{"events": [{"user_id": "\xff"}]}',
            "application/json",
            400,
            "validation_failed",
            "invalid_json",
        ),
        ("empty body", b"", "application/json", 400, "validation_failed", "invalid_json"),
        ("array body", b"[]", "application/json", 400, "validation_failed", "invalid_body"),
        ("events not a list", b'{"events": {}}', "application/json", 400, "validation_failed", "invalid_body"),
        (
            "unknown top-level field",
            b'{"events": [], "batch": []}',
            "application/json",
            400,
            "validation_failed",
            "invalid_body",
        ),
        (
            "501 events",
            orjson.dumps({"events": [{"user_id": "u", "event_type": "e"}] * 501}),
            "application/json",
            400,
            "validation_failed",
            "batch_too_large",
        ),
        (
            "body over 5 MiB",
            orjson.dumps({"events": [{"user_id": "u", "event_type": "e", "payload": {"b": "x" * 30_000}}] * 180}),
            "application/json",
            413,
            "payload_too_large",
            "body_too_large",
        ),
    ],
)
def test_batch_refuses_whole_request(
    stack: LocalStack,
    api: Api,
    account: Account,
    case: str,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
    error_type: str,
) -> None:
    # GIVEN a malformed request with a valid key   WHEN it is sent
    response = api.post(BATCH, data=body, content_type=content_type, headers=account.key)
    # THEN the JSON error shape, one record for the tenant, and nothing queued
    assert_error(response, status, code)
    assert [r["error_type"] for r in error_rows(stack, account.tenant_id)] == [error_type]
    assert stack.bus.published_count == 0


def test_track_refuses_non_json_and_oversized_bodies(stack: LocalStack, api: Api, account: Account) -> None:
    assert_error(api.post(TRACK, data=b"user_id=u", content_type="application/json", headers=account.key), 400)
    not_utf8 = b'{"user_id": "u\xff", "event_type": "e"}'
    error = assert_error(api.post(TRACK, data=not_utf8, content_type="application/json", headers=account.key), 400)
    assert error["message"] == "body is not valid UTF-8 (at byte 14)"
    huge = orjson.dumps({"user_id": "u", "event_type": "e", "payload": {"b": "x" * 300_000}})
    assert_error(api.post(TRACK, data=huge, content_type="application/json", headers=account.key), 413)
    kinds = [r["error_type"] for r in error_rows(stack, account.tenant_id)]
    assert kinds == ["invalid_json", "invalid_json", "body_too_large"]
    assert stack.bus.published_count == 0


def test_empty_batch_queues_nothing(stack: LocalStack, api: Api, account: Account) -> None:
    assert api.post(BATCH, {"events": []}, headers=account.key).get_json() == {"queued": 0, "skipped": 0}
    assert stack.bus.published_count == 0


def test_a_batch_is_one_bus_message(stack: LocalStack, api: Api, account: Account) -> None:
    response = api.post(BATCH, {"events": _valid(500, "u")}, headers=account.key)
    assert response.get_json() == {"queued": 500, "skipped": 0}
    assert stack.bus.published_count == 1
    stack.bus.drain()
    assert len(stored_events(stack, account.tenant_id)) == 500


@pytest.mark.parametrize("path", [TRACK, BATCH])
def test_credentials_are_checked_before_anything_is_queued(stack: LocalStack, api: Api, path: str) -> None:
    owner = api.signup()
    other = api.signup()
    body = {"user_id": "u", "event_type": "e"} if path == TRACK else {"events": [{"user_id": "u", "event_type": "e"}]}
    # missing key, malformed key, bearer token instead of a key → 401
    assert_error(api.post(path, body), 401, "unauthorized")
    assert_error(api.post(path, body, headers={"Authorization": "ApiKey sk_live_" + "x" * 40}), 401)
    assert_error(api.post(path, body, headers=owner.bearer), 401)
    # a revoked key → 401
    listed = api.get("/api/keys/", headers=owner.bearer).get_json()["results"]
    assert api.delete(f"/api/keys/{listed[0]['id']}/", headers=owner.bearer).status_code == 204
    assert_error(api.post(path, body, headers=owner.key), 401)
    # another tenant's key aimed at this tenant → 404 (existence is not leaked as 403)
    assert_error(api.post(f"{path}?tenant={owner.tenant_id}", body, headers=other.key), 404)
    # a viewer key → 403
    viewer = api.post("/api/keys/", {"name": "ro", "role": "viewer"}, headers=other.bearer).get_json()["key"]
    assert_error(api.post(path, body, headers={"Authorization": f"ApiKey {viewer}"}), 403, "forbidden")
    assert stack.bus.published_count == 0
    # and the other tenant's own key writes to its own tenant only
    assert api.post(path, body, headers=other.key).status_code == 202
    stack.bus.drain()
    assert len(stored_events(stack, other.tenant_id)) == 1
    assert stored_events(stack, owner.tenant_id) == []


def test_openapi_documents_the_ingestion_bodies(api: Api) -> None:
    document = api.get("/api/openapi.json").get_json()
    track = document["paths"]["/api/ingestion/track/"]["post"]
    batch = document["paths"]["/api/ingestion/track/batch/"]["post"]
    assert track["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/IncomingEvent")
    assert batch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/EventBatchRequest")
    assert track["security"] == [{"apiKeyAuth": []}] and track["x-segops-min-role"] == "member"
    assert "/api/ingestion/shopify/{tenant_slug}/" in document["paths"]
    assert set(document["components"]["schemas"]["IngestionStats"]["properties"]) == {
        "window",
        "total_events",
        "unique_users",
        "timeseries",
        "event_types",
    }


def test_a_body_nested_past_what_json_readers_take_is_named_so(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN a batch one of whose payloads nests 1,100 levels: valid JSON that no reader here takes
    # (orjson stops at 1,024), so the body cannot be split into its events
    # (written by hand: the standard library's writer would hit the interpreter's recursion limit)
    deep = '{"user_id": "deep", "event_type": "e", "payload": ' + '{"a": ' * 1100 + "1" + "}" * 1100 + "}"
    body = '{"events": [' + json.dumps(_valid(1, "before")[0]) + ", " + deep + "]}"
    # WHEN it is sent
    response = api.post(BATCH, data=body, content_type="application/json", headers=account.key)
    # THEN it is refused as nested too deep (not as "not valid JSON"), and recorded so
    error = assert_error(response, 400, "validation_failed")
    assert error["message"].startswith("body is nested more than 1,024 levels deep (at byte ")
    assert [e["type"] for e in error["details"]["errors"]] == ["invalid_json"]
    assert [r["error_type"] for r in error_rows(stack, account.tenant_id)] == ["invalid_json"]
