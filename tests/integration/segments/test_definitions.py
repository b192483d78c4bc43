from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from segops.dsl import sources
from segops.localstack import LocalStack

from tests.integration.segments.test_crud import create
from tests.support.api import Api, assert_error
from tests.support.fixtures import load_fixture
from tests.support.segment_api import (
    VISITED,
    defined_segment,
    event_row,
    insert_events,
    key_with_role,
    members,
    warehouse_rows,
)

SPENDERS = load_fixture("segments/high-value-churn-risk")


def test_every_definition_change_is_a_new_immutable_version(stack: LocalStack) -> None:
    # GIVEN a segment
    api = Api(stack)
    account = api.signup()
    made = create(api, account, name="Spenders")
    path = f"/api/segments/{made['id']}/"
    # WHEN its definition is set, re-sent unchanged, renamed, and changed again (by an API key)
    first = api.patch(path, {"definition": VISITED}, headers=account.bearer).get_json()
    same = api.patch(path, {"definition": VISITED}, headers=account.bearer).get_json()
    renamed = api.patch(path, {"name": "Big spenders"}, headers=account.bearer).get_json()
    second = api.patch(path, {"definition": SPENDERS}, headers=account.key).get_json()
    # THEN only real definition changes made versions, and the segment points at the newest
    assert (first["version"], same["version"], renamed["version"], second["version"]) == (1, 1, 1, 2)
    assert second["definition"] == SPENDERS and second["name"] == "Big spenders"
    versions = api.get(f"{path}versions/", headers=account.bearer).get_json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["definition"] for v in versions] == [SPENDERS, VISITED]
    assert set(versions[0]) == {"version", "definition", "created_at", "created_by", "prompt"}
    assert versions[0]["prompt"] is None  # only ai segments keep the prompt of a definition
    assert versions[1]["created_by"] == account.email
    assert versions[0]["created_by"].startswith("api_key:")
    assert versions[0]["created_at"] >= versions[1]["created_at"]
    # AND going back to an old definition is a third version, the history untouched
    api.patch(path, {"definition": VISITED}, headers=account.bearer)
    again = api.get(f"{path}versions/", headers=account.bearer).get_json()["results"]
    assert [v["version"] for v in again] == [3, 2, 1] and again[1:] == versions


def test_invalid_definition_is_400_with_pointer_and_changes_nothing(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    made = create(api, account)
    path = f"/api/segments/{made['id']}/"
    api.patch(path, {"definition": VISITED}, headers=account.bearer)
    bad = {
        "logic": "AND",
        "conditions": [
            {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1},
            {"type": "recency", "event_type": "page_viewed", "operator": "eq", "window_days": 30},
        ],
    }
    error = assert_error(api.patch(path, {"definition": bad}, headers=account.bearer), 400, "validation_failed")
    assert error["details"]["errors"][0]["pointer"] == "/definition/conditions/1/operator"
    unknown = {"logic": "AND", "conditions": [{"type": "telepathy"}]}
    error = assert_error(api.patch(path, {"definition": unknown}, headers=account.bearer), 400)
    assert error["details"]["errors"][0]["pointer"] == "/definition/conditions/0/type"
    current = api.get(path, headers=account.bearer).get_json()
    assert current["definition"] == VISITED and current["version"] == 1
    assert len(api.get(f"{path}versions/", headers=account.bearer).get_json()["results"]) == 1


def test_preview_counts_samples_and_shows_placeholder_sql_writing_nothing(stack: LocalStack) -> None:
    # GIVEN 30 users who viewed a page and 5 who only ordered
    api = Api(stack)
    account = api.signup()
    now = datetime.now(UTC) - timedelta(minutes=5)
    tenant = account.tenant_id
    insert_events(stack, [event_row(tenant, f"u{i:03d}", "page_viewed", now, {"path": "/pricing"}) for i in range(30)])
    insert_events(stack, [event_row(tenant, f"o{i}", "order_placed", now, {"total": 7}) for i in range(5)])
    # AND another tenant whose visitors must not be counted
    other = api.signup()
    insert_events(stack, [event_row(other.tenant_id, "x1", "page_viewed", now, {"path": "/secret-value"})])
    rows, published = warehouse_rows(stack), stack.bus.published_count
    # WHEN previewing "viewed a page" with a sample of 10
    response = api.post("/api/segments/preview/", {"definition": VISITED, "limit": 10}, headers=account.key)
    # THEN the count, the first ten ids and the SQL with placeholders come back
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"matched_users", "sample_user_ids", "sql"}
    assert body["matched_users"] == 30
    assert body["sample_user_ids"] == [f"u{i:03d}" for i in range(10)]
    assert "{tenant_id:UInt64}" in body["sql"] and "{now:" in body["sql"]
    assert "page_viewed" not in body["sql"]  # values are parameters, never inlined
    # AND nothing was written
    assert warehouse_rows(stack) == rows and stack.bus.published_count == published
    # AND limit is bounded, the definition validated with a pointer
    too_many = api.post("/api/segments/preview/", {"definition": VISITED, "limit": 1001}, headers=account.bearer)
    assert assert_error(too_many, 400)["details"]["errors"][0]["pointer"] == "/limit"
    broken = {"logic": "XOR", "conditions": VISITED["conditions"]}
    invalid = api.post("/api/segments/preview/", {"definition": broken}, headers=account.bearer)
    assert assert_error(invalid, 400)["details"]["errors"][0]["pointer"] == "/definition/logic"
    # AND a viewer may not preview
    viewer = key_with_role(api, account, "viewer")
    assert_error(api.post("/api/segments/preview/", {"definition": VISITED}, headers=viewer), 403)


def test_a_preview_split_into_ranges_of_users_counts_and_samples_as_one_pass(
    stack: LocalStack, monkeypatch: Any
) -> None:
    # GIVEN 30 visitors; a tenant too large for one statement's memory is read per range of users
    api = Api(stack)
    account = api.signup()
    now = datetime.now(UTC) - timedelta(minutes=5)
    visits = [event_row(account.tenant_id, f"u{i:03d}", "page_viewed", now, {"path": "/p"}) for i in range(30)]
    insert_events(stack, visits)

    def preview(limit: int) -> Any:
        response = api.post("/api/segments/preview/", {"definition": VISITED, "limit": limit}, headers=account.key)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    whole = [preview(limit) for limit in (0, 4, 10, 30)]
    monkeypatch.setattr(sources, "split_points", lambda *_: ["u003", "u005", "u020"])
    # THEN the same count and the same first members, a sample spanning several ranges included
    assert [preview(limit) for limit in (0, 4, 10, 30)] == whole
    assert whole[2]["sample_user_ids"] == [f"u{i:03d}" for i in range(10)] and whole[3]["matched_users"] == 30


def _users(api: Api, account: Any, segment_id: int) -> set[str]:
    return {m["user_id"] for m in members(api, account, segment_id)}


def test_a_new_definition_or_a_switch_on_is_computed_without_asking(stack: LocalStack) -> None:
    """Lookups and member lists never keep answering for a definition the segment no longer has."""
    api = Api(stack)
    account = api.signup()
    now = datetime.now(UTC)
    tenant = account.tenant_id
    insert_events(
        stack,
        [event_row(tenant, "once", "page_viewed", now - timedelta(hours=2))]
        + [event_row(tenant, "twice", "page_viewed", now - timedelta(hours=h)) for h in (1, 2)],
    )
    twice = {**VISITED, "conditions": [{**VISITED["conditions"][0], "operator": "gte", "value": 2}]}
    # WHEN a segment gets its definition (no compute requested) and the bus is delivered
    segment_id = defined_segment(api, account, VISITED)
    stack.bus.drain()
    # THEN it is computed
    assert _users(api, account, segment_id) == {"once", "twice"}
    path = f"/api/segments/{segment_id}/"
    # WHEN the definition changes THEN membership follows it
    assert api.patch(path, {"definition": twice}, headers=account.bearer).status_code == 200
    stack.bus.drain()
    assert _users(api, account, segment_id) == {"twice"}
    lookup = api.get("/api/segments/membership/?user_id=once", headers=account.key).get_json()
    assert segment_id not in lookup["segment_ids"]
    # WHEN it is switched off, a user qualifies meanwhile, and it is switched on again
    assert api.patch(path, {"active": False}, headers=account.bearer).status_code == 200
    track = {"user_id": "once", "event_type": "page_viewed"}
    assert api.post("/api/ingestion/track/", track, headers=account.key).status_code == 202
    stack.bus.drain()
    assert api.patch(path, {"active": True}, headers=account.bearer).status_code == 200
    assert api.get(f"{path}compute/", headers=account.bearer).get_json()["status"] == "queued"
    stack.bus.drain()
    # THEN the events of its time off count
    assert _users(api, account, segment_id) == {"once", "twice"}
    # AND a rename computes nothing
    computed = api.get(f"{path}compute/", headers=account.bearer).get_json()
    assert api.patch(path, {"name": "Renamed"}, headers=account.bearer).status_code == 200
    assert api.get(f"{path}compute/", headers=account.bearer).get_json() == computed


def test_a_preview_past_its_time_bound_is_422_too_expensive(stack: LocalStack, monkeypatch: Any) -> None:
    api = Api(stack)
    account = api.signup()
    query = stack.runtime.warehouse.query

    def past_its_bound(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "max_execution_time" in sql:  # the bounded statements: the preview's
            raise RuntimeError("Code: 159. DB::Exception: Timeout exceeded: elapsed 20.0 s (TIMEOUT_EXCEEDED)")
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(stack.runtime.warehouse, "query", past_its_bound)
    response = api.post("/api/segments/preview/", {"definition": VISITED}, headers=account.key)
    error = assert_error(response, 422, "too_expensive")
    assert "TIMEOUT" not in error["message"] and "narrow it" in error["message"]
