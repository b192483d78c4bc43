from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from segops.cache.memory import MemoryCache
from segops.dsl import EventSource, compile_segments, parse_definition, tenant_events
from segops.ingestion.events import MAX_PAYLOAD_DEPTH
from segops.localstack import LocalStack
from segops.sandbox.service import SegmentDelta, SimulatedEvent, simulate
from segops.segments.active import active_segments
from segops.warehouse import TenantWarehouse

from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import defined_segment, event_row, insert_events, key_with_role, warehouse_rows

PUBLISH = "/api/explorer/sandbox/publish/"
NOW = datetime.now(UTC)


def group(*conditions: dict[str, Any], logic: str = "AND") -> dict[str, Any]:
    return {"logic": logic, "conditions": list(conditions)}


ORDERS_2 = group({"type": "event_count", "event_type": "order_placed", "operator": "gte", "value": 2})
SPENT_500 = group(
    {
        "type": "monetary",
        "event_type": "order_placed",
        "property": "total",
        "metric": "sum",
        "operator": "gte",
        "value": 500,
    }
)
LAPSED_30 = group({"type": "recency", "event_type": "page_viewed", "operator": "gt", "window_days": 30})
RECENT_7 = group({"type": "recency", "event_type": "page_viewed", "operator": "lt", "window_days": 7})
PRO = group({"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"})
STARTER = group({"type": "user_property", "property": "plan", "operator": "eq", "value": "starter"})


def publish(api: Api, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(PUBLISH, body, headers=account.bearer)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def names(refs: list[dict[str, Any]]) -> set[str]:
    return {r["name"] for r in refs}


def cache_snapshot(stack: LocalStack) -> dict[str, tuple[float, bytes]]:
    """The cache's entries but the rate limiter's buckets: every call takes a token, the sandbox too."""
    cache = stack.runtime.cache
    assert isinstance(cache, MemoryCache)
    return {key: entry for key, entry in cache._data.items() if not key.startswith("ratelimit:")}


def seeded(stack: LocalStack) -> tuple[Api, Account, dict[str, int]]:
    """GIVEN user `u1`: one $300 order, a page view 40 days ago, plan `starter`; one segment per condition."""
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    insert_events(
        stack,
        [
            event_row(tenant, "u1", "order_placed", NOW - timedelta(days=3), {"total": 300}),
            event_row(tenant, "u1", "page_viewed", NOW - timedelta(days=40), {"path": "/"}),
            event_row(tenant, "u1", "context_identified", NOW - timedelta(days=50), {"plan": "starter"}),
        ],
    )
    ids = {
        name: defined_segment(api, account, definition, name)
        for name, definition in {
            "orders_2": ORDERS_2,
            "spent_500": SPENT_500,
            "lapsed_30": LAPSED_30,
            "recent_7": RECENT_7,
            "pro": PRO,
            "starter": STARTER,
        }.items()
    }
    return api, account, ids


def test_event_count_and_monetary_enter(stack: LocalStack) -> None:
    api, account, ids = seeded(stack)
    # WHEN u1 would place a $250 order (the reference example's shape)
    result = publish(
        api, account, {"user_id": "u1", "event_type": "order_placed", "payload": {"total": 250, "currency": "USD"}}
    )
    # THEN they enter the two-orders and $500 segments; nothing else moves
    assert set(result) == {"published", "entered", "exited", "unchanged_count"}
    assert result["published"] is True
    assert names(result["entered"]) == {"orders_2", "spent_500"}
    assert {r["id"] for r in result["entered"]} == {ids["orders_2"], ids["spent_500"]}
    assert result["exited"] == [] and result["unchanged_count"] == 4


def test_non_numeric_total_is_ignored_by_monetary(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    result = publish(api, account, {"user_id": "u1", "event_type": "order_placed", "payload": {"total": "250"}})
    assert names(result["entered"]) == {"orders_2"}


def test_recency_exits_and_enters(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    # WHEN u1 would view a page now (occurred_at defaults to now)
    result = publish(api, account, {"user_id": "u1", "event_type": "page_viewed"})
    # THEN they leave "not seen in 30 days" and join "seen in the last 7 days"
    assert names(result["exited"]) == {"lapsed_30"}
    assert names(result["entered"]) == {"recent_7"}
    assert result["unchanged_count"] == 4


def test_recency_honours_occurred_at(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    # WHEN the simulated view happened 10 days ago THEN u1 is no longer lapsed but not recent either
    at = (NOW - timedelta(days=10)).isoformat().replace("+00:00", "Z")
    result = publish(api, account, {"user_id": "u1", "event_type": "page_viewed", "occurred_at": at})
    assert names(result["exited"]) == {"lapsed_30"} and result["entered"] == []


def test_context_identified_applies_as_user_properties(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    result = publish(api, account, {"user_id": "u1", "event_type": "context_identified", "payload": {"plan": "pro"}})
    assert names(result["entered"]) == {"pro"}
    assert names(result["exited"]) == {"starter"}


def test_user_without_history_starts_empty(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    # WHEN a brand-new user would place one order
    result = publish(api, account, {"user_id": "nobody-yet", "event_type": "order_placed", "payload": {"total": 10}})
    # THEN from an empty start they enter only what one order satisfies: "never viewed a page" counts as lapsed
    assert names(result["entered"]) == {"lapsed_30"}
    assert result["exited"] == [] and result["unchanged_count"] == 5


def test_a_user_seen_only_in_types_no_segment_reads_is_in_the_universe(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    insert_events(stack, [event_row(account.tenant_id, "u2", "bulk_ev", NOW - timedelta(days=1), {"b": "x"})])
    # WHEN u2, known by an event type no segment names, would view a page
    result = publish(api, account, {"user_id": "u2", "event_type": "page_viewed", "payload": None})
    # THEN they were lapsed (in the universe, never viewed a page) and leave it; a null payload is `{}`
    assert names(result["exited"]) == {"lapsed_30"} and names(result["entered"]) == {"recent_7"}


def test_sums_past_the_largest_double_are_infinite_as_in_clickhouse(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    big = [
        event_row(account.tenant_id, "rich", "order_placed", NOW - timedelta(days=d), {"total": 1e308}) for d in (1, 2)
    ]
    insert_events(stack, big)
    # WHEN the sandbox evaluates "spent ≥ 500" on totals summing past 1.8e308 THEN it answers: the user
    # was in it already (sum = +inf, as the compute has it) and stays, as in every other segment
    result = publish(api, account, {"user_id": "rich", "event_type": "order_placed", "payload": {"total": 1e308}})
    assert (result["entered"], result["exited"]) == ([], [])


def test_nothing_is_written_anywhere(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    rows, published, cached = warehouse_rows(stack), stack.bus.published_count, cache_snapshot(stack)
    pending = stack.bus.pending()
    for body in (
        {"user_id": "u1", "event_type": "order_placed", "payload": {"total": 900}},
        {"user_id": "u1", "event_type": "context_identified", "payload": {"plan": "pro"}},
        {"user_id": "new-user", "event_type": "page_viewed"},
    ):
        publish(api, account, body)
    assert warehouse_rows(stack) == rows
    assert stack.bus.published_count == published and stack.bus.pending() == pending
    assert cache_snapshot(stack) == cached
    # AND the simulated events really are gone: the same question gives the same answer again
    again = publish(api, account, {"user_id": "u1", "event_type": "order_placed", "payload": {"total": 250}})
    assert names(again["entered"]) == {"orders_2", "spent_500"}


def test_only_this_tenants_active_segments_are_evaluated(stack: LocalStack) -> None:
    api, account, ids = seeded(stack)
    # GIVEN another tenant with the same user id and a segment u1's order would satisfy
    other = api.signup()
    insert_events(stack, [event_row(other.tenant_id, "u1", "order_placed", NOW - timedelta(days=1), {"total": 1})])
    defined_segment(api, other, ORDERS_2, "other tenant's")
    # AND one of our segments deactivated
    api.patch(f"/api/segments/{ids['orders_2']}/", {"active": False}, headers=account.bearer)
    # WHEN u1 would order
    result = publish(api, account, {"user_id": "u1", "event_type": "order_placed", "payload": {"total": 250}})
    # THEN neither the other tenant's segment nor the inactive one appears or is counted
    assert names(result["entered"]) == {"spent_500"}
    assert result["unchanged_count"] == 4
    # AND the other tenant sees only its own segment, evaluated on its own history
    theirs = publish(api, other, {"user_id": "u1", "event_type": "order_placed"})
    assert names(theirs["entered"]) == {"other tenant's"} and theirs["unchanged_count"] == 0


def test_validation_and_roles(stack: LocalStack) -> None:
    api, account, _ = seeded(stack)
    bad = api.post(PUBLISH, {"user_id": "", "event_type": "Bad Type"}, headers=account.bearer)
    pointers = {e["pointer"] for e in assert_error(bad, 400, "validation_failed")["details"]["errors"]}
    assert pointers == {"/user_id", "/event_type"}
    future = (NOW + timedelta(days=3)).isoformat()
    late = api.post(PUBLISH, {"user_id": "u", "event_type": "x", "occurred_at": future}, headers=account.bearer)
    assert assert_error(late, 400)["details"]["errors"][0]["pointer"] == "/occurred_at"
    # The ingestion rule for times: ISO 8601 text from 1900 on (no epoch numbers), as the edge takes them
    for refused_time in ("0001-01-01T00:00:00Z", 12345, "yesterday", True):
        body = {"user_id": "u", "event_type": "x", "occurred_at": refused_time}
        error = assert_error(api.post(PUBLISH, body, headers=account.bearer), 400, "validation_failed")
        assert error["details"]["errors"][0]["pointer"] == "/occurred_at", refused_time
    for taken_time in ("2026-03-01", "2026-03-01T12:00:00+02:00", "2026-03-01T10:00:00.123Z"):
        body = {"user_id": "u", "event_type": "x", "occurred_at": taken_time}
        assert api.post(PUBLISH, body, headers=account.bearer).status_code == 200, taken_time
    # The ingestion rule for user ids: C0, DEL and C1 controls (here NEL, U+0085) are refused alike.
    for control in ("\x07", "\x7f", "\x85"):
        refused = api.post(PUBLISH, {"user_id": f"u{control}1", "event_type": "x"}, headers=account.bearer)
        assert assert_error(refused, 400)["details"]["errors"][0]["pointer"] == "/user_id"
    # The ingestion rule for payloads: at most MAX_PAYLOAD_DEPTH levels of objects and arrays
    payload: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_PAYLOAD_DEPTH):
        payload = {"a": payload}
    deep = api.post(PUBLISH, {"user_id": "u", "event_type": "x", "payload": payload}, headers=account.bearer)
    assert assert_error(deep, 400)["details"]["errors"][0]["pointer"] == "/payload"
    at_limit = api.post(PUBLISH, {"user_id": "u", "event_type": "x", "payload": payload["a"]}, headers=account.bearer)
    assert at_limit.status_code == 200
    forbidden = api.post(PUBLISH, {"user_id": "u1", "event_type": "x"}, headers=key_with_role(api, account, "viewer"))
    assert_error(forbidden, 403, "forbidden")
    assert_error(api.post(PUBLISH, {"user_id": "u1", "event_type": "x"}), 401, "unauthorized")


def compiled_answer(stack: LocalStack, tenant_id: int, event: SimulatedEvent, at: datetime) -> SegmentDelta:
    """The sandbox's answer from the DSL compiler in ClickHouse: every active segment on the stored
    history and on that history plus the simulated event (a raw source: the stored rows and one bound row)."""
    active = active_segments(stack.runtime, tenant_id)
    segments = [(s.id, parse_definition(s.definition)) for s in active if s.definition is not None]
    wh = TenantWarehouse(stack.runtime.warehouse, tenant_id)
    simulated = EventSource(
        "(SELECT user_id, event_type, occurred_at, received_at, payload FROM events "
        "WHERE tenant_id = {tenant_id:UInt64} AND user_id = {src_user:String} "
        "UNION ALL SELECT {src_user:String}, {src_type:String}, {src_occurred:DateTime64(3, 'UTC')}, "
        "{src_received:DateTime64(3, 'UTC')}, {src_payload:String})",
        "user_id = {src_user:String}",
        {
            "src_user": event.user_id,
            "src_type": event.event_type,
            "src_occurred": event.occurred_at or at,
            "src_received": at,
            "src_payload": orjson.dumps(dict(event.payload)).decode(),
        },
    )

    def members(source: EventSource) -> set[int]:
        query = compile_segments(segments, source)
        rows = wh.query(query.sql, query.bind(at)).dicts()
        return {sid for row in rows for sid, column in query.columns.items() if row[column]}

    before = members(tenant_events([event.user_id]))
    after = members(simulated)
    entered = [s for s in active if s.id in after - before]
    exited = [s for s in active if s.id in before - after]
    return SegmentDelta(entered, exited, len(active) - len(entered) - len(exited))


def test_in_memory_answer_is_the_compiled_sql_answer(stack: LocalStack) -> None:
    # GIVEN the seeded user, a user whose only event lies after the evaluation time (outside the
    # universe at NOW) and a user without history; segments on three event types and on properties
    api, account, _ = seeded(stack)
    insert_events(stack, [event_row(account.tenant_id, "later", "email_opened", NOW + timedelta(days=1))])
    no_emails = group({"type": "event_count", "event_type": "email_opened", "operator": "lt", "value": 1})
    defined_segment(api, account, no_emails, "no_emails")
    for user_id in ("u1", "later", "nobody-yet"):
        for event_type in ("order_placed", "page_viewed", "context_identified", "email_opened", "unused_type"):
            event = SimulatedEvent(user_id, event_type, None, {"total": 900, "plan": "pro"})
            # WHEN the sandbox answers (in memory)
            answer = simulate(stack.runtime, account.tenant_id, event, NOW)
            # THEN it is exactly what the DSL compiler computes in ClickHouse on both histories
            expected = compiled_answer(stack, account.tenant_id, event, NOW)
            assert {s.id for s in answer.entered} == {s.id for s in expected.entered}, (user_id, event_type)
            assert {s.id for s in answer.exited} == {s.id for s in expected.exited}, (user_id, event_type)
            assert answer.unchanged_count == expected.unchanged_count
