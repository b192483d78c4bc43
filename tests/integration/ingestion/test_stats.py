"""Stats and errors endpoints against rows we inserted ourselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from segops.ingestion.error_log import ErrorRecord, record_errors
from segops.ingestion.writer import write_events
from segops.localstack import LocalStack
from segops.messages import TrackedEvent

from tests.support.api import Account, Api, assert_error


def _received(stack: LocalStack, tenant_id: int, user: str, event_type: str, at: datetime) -> TrackedEvent:
    return TrackedEvent(
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
        user_id=user,
        event_type=event_type,
        occurred_at=at - timedelta(days=40),  # stats count by receive time, not occurrence
        received_at=at,
    )


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def test_stats_match_inserted_events(stack: LocalStack, api: Api) -> None:
    # GIVEN events received 1 h, 5 h, 30 h and 9 days ago (plus another tenant's events)
    account, other = api.signup(), api.signup()
    now = datetime.now(UTC)
    h1 = _hour(now) - timedelta(hours=1) + timedelta(minutes=20)
    h5 = _hour(now) - timedelta(hours=5) + timedelta(minutes=10)
    d1 = now - timedelta(hours=30)
    d9 = now - timedelta(days=9)
    t = account.tenant_id
    events = [
        _received(stack, t, "alice", "page_viewed", h1),
        _received(stack, t, "alice", "page_viewed", h1),
        _received(stack, t, "bob", "order_placed", h1),
        _received(stack, t, "bob", "page_viewed", h5),
        _received(stack, t, "carol", "page_viewed", d1),
        _received(stack, t, "dave", "order_placed", d9),
        _received(stack, other.tenant_id, "zed", "page_viewed", h1),
    ]
    write_events(stack.runtime, events)
    # WHEN the 24 h window is read with a JWT
    day = api.get("/api/ingestion/stats/?window=24h", headers=account.bearer)
    after = datetime.now(UTC)  # the request may straddle an hour boundary
    # THEN totals, unique users, 24 hourly buckets and type counts match
    assert day.status_code == 200
    body = day.get_json()
    assert set(body) == {"window", "total_events", "unique_users", "timeseries", "event_types"}
    assert (body["window"], body["total_events"], body["unique_users"]) == ("24h", 4, 2)
    assert len(body["timeseries"]) == 24
    assert body["timeseries"][-1]["bucket"] in {_hour(t).strftime("%Y-%m-%dT%H:%M:%SZ") for t in (now, after)}
    buckets = {b["bucket"]: (b["event_count"], b["unique_users"]) for b in body["timeseries"]}
    assert buckets[_hour(h1).strftime("%Y-%m-%dT%H:%M:%SZ")] == (3, 2)
    assert buckets[_hour(h5).strftime("%Y-%m-%dT%H:%M:%SZ")] == (1, 1)
    assert sum(b["event_count"] for b in body["timeseries"]) == 4
    assert set(body["timeseries"][0]) == {"bucket", "event_count", "unique_users"}
    assert body["event_types"] == [
        {"event_type": "page_viewed", "count": 3},
        {"event_type": "order_placed", "count": 1},
    ]
    # AND the 7 d window (with an API key) has 7 daily buckets and includes the 30 h old event only
    week = api.get("/api/ingestion/stats/?window=7d", headers=account.key).get_json()
    assert (week["total_events"], week["unique_users"]) == (5, 3)
    assert len(week["timeseries"]) == 7
    assert week["timeseries"][-1]["bucket"] in {t.strftime("%Y-%m-%dT00:00:00Z") for t in (now, datetime.now(UTC))}
    assert sum(b["event_count"] for b in week["timeseries"]) == 5
    # AND the default window is 24h, a bad one is a 400
    assert api.get("/api/ingestion/stats/", headers=account.key).get_json()["window"] == "24h"
    # AND the 30 d window has 30 daily buckets and includes the 9-day-old event
    month = api.get("/api/ingestion/stats/?window=30d", headers=account.key).get_json()
    assert (month["total_events"], month["unique_users"], len(month["timeseries"])) == (6, 4, 30)
    assert_error(api.get("/api/ingestion/stats/?window=90d", headers=account.key), 400)


def test_errors_are_newest_first_limited_and_tenant_scoped(stack: LocalStack, api: Api) -> None:
    account, other = api.signup(), api.signup()
    base = datetime.now(UTC) - timedelta(minutes=10)
    for i in range(60):
        record_errors(
            stack.runtime,
            account.tenant_id,
            "api",
            [ErrorRecord(f"type_{i}", f"detail {i}")],
            base + timedelta(seconds=i),
        )
    record_errors(stack.runtime, other.tenant_id, "api", [ErrorRecord("theirs", "not yours")])
    # default limit 50, newest first, exactly ts/error_type/detail, in a list object (never a bare array)
    listed = api.get("/api/ingestion/errors/", headers=account.bearer)
    assert listed.status_code == 200
    body = listed.get_json()
    assert set(body) == {"results"}
    rows = body["results"]
    assert len(rows) == 50
    assert [r["error_type"] for r in rows[:3]] == ["type_59", "type_58", "type_57"]
    assert all(set(r) == {"ts", "error_type", "detail"} for r in rows)
    assert rows[0]["ts"].startswith((base + timedelta(seconds=59)).strftime("%Y-%m-%dT%H:%M:%S"))

    def results(query: str) -> list[dict[str, str]]:
        response = api.get(f"/api/ingestion/errors/{query}", headers=account.key)
        assert response.status_code == 200, response.get_data(as_text=True)
        return list(response.get_json()["results"])

    assert len(results("?limit=100")) == 60
    assert [r["detail"] for r in results("?limit=2")] == ["detail 59", "detail 58"]
    assert_error(api.get("/api/ingestion/errors/?limit=0", headers=account.key), 400)
    assert_error(api.get("/api/ingestion/errors/?limit=-5", headers=account.key), 400)
    assert_error(api.get("/api/ingestion/errors/?limit=ten", headers=account.key), 400)
    assert_error(api.get("/api/ingestion/errors/"), 401)
    assert [r["error_type"] for r in api.get("/api/ingestion/errors/", headers=other.key).get_json()["results"]] == [
        "theirs"
    ]


def test_errors_limit_above_the_maximum_is_clamped_to_100(stack: LocalStack, api: Api) -> None:
    # GIVEN 130 error records
    account = api.signup()
    base = datetime.now(UTC) - timedelta(minutes=10)
    records = [ErrorRecord(f"type_{i}", f"detail {i}") for i in range(130)]
    for i, record in enumerate(records):
        record_errors(stack.runtime, account.tenant_id, "api", [record], base + timedelta(seconds=i))
    # WHEN more than the documented maximum is asked for THEN the 100 most recent come back, not a 400
    for limit in ("101", "500", "99999999999999999999999"):
        response = api.get(f"/api/ingestion/errors/?limit={limit}", headers=account.key)
        assert response.status_code == 200, response.get_data(as_text=True)
        rows = response.get_json()["results"]
        assert [r["detail"] for r in rows] == [f"detail {i}" for i in range(129, 29, -1)]
    # AND the served OpenAPI document says the same: a list object, no maximum that would refuse 500
    document = api.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/ingestion/errors/"]["get"]
    [limit] = operation["parameters"]
    assert limit["schema"]["minimum"] == 1 and "maximum" not in limit["schema"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert schema["type"] == "object" and schema["required"] == ["results"]


def test_viewer_can_read_stats_and_errors(api: Api) -> None:
    account: Account = api.signup()
    viewer = api.post("/api/keys/", {"name": "ro", "role": "viewer"}, headers=account.bearer).get_json()["key"]
    headers = {"Authorization": f"ApiKey {viewer}"}
    assert api.get("/api/ingestion/stats/?window=7d", headers=headers).status_code == 200
    assert api.get("/api/ingestion/errors/", headers=headers).status_code == 200


def test_property_keys_are_dotted_paths_per_event_type_and_tenant_scoped(stack: LocalStack, api: Api) -> None:
    # GIVEN payloads with nested objects for two event types (and another tenant's secrets)
    account, other = api.signup(), api.signup()
    now = datetime.now(UTC)

    def event(tenant_id: int, event_type: str, payload: dict[str, object]) -> TrackedEvent:
        return _received(stack, tenant_id, "alice", event_type, now).model_copy(update={"payload": payload})

    write_events(
        stack.runtime,
        [
            event(account.tenant_id, "order_placed", {"total": 520, "shipping": {"address": {"city": "Oslo"}}}),
            event(account.tenant_id, "order_placed", {"currency": "USD", "items": [1, 2], "odd.key": 1}),
            event(account.tenant_id, "page_viewed", {"path": "/pricing"}),
            event(other.tenant_id, "order_placed", {"their_secret_field": 1}),
        ],
    )
    # WHEN the builder asks for property keys
    listed = api.get("/api/ingestion/properties/", headers=account.bearer)
    # THEN each event type lists its dotted paths, sorted, and nothing of the other tenant
    assert listed.status_code == 200
    assert listed.get_json() == {
        "results": [
            {"event_type": "order_placed", "properties": ["currency", "items", "shipping.address.city", "total"]},
            {"event_type": "page_viewed", "properties": ["path"]},
        ]
    }
    # AND one event type can be asked for; a malformed one is a 400 at its query pointer
    one = api.get("/api/ingestion/properties/?event_type=page_viewed", headers=account.key).get_json()
    assert one == {"results": [{"event_type": "page_viewed", "properties": ["path"]}]}
    bad = assert_error(api.get("/api/ingestion/properties/?event_type=Bad", headers=account.key), 400)
    assert bad["details"]["errors"][0]["pointer"] == "/query/event_type"
    assert_error(api.get("/api/ingestion/properties/"), 401)
