"""The in-memory evaluator (segops.dsl.evaluator) agrees with the compiled SQL run on ClickHouse (chDB)
and with the independent reference evaluator, user by user, on random definitions and histories."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from segops.dsl import compile_segments, parse_definition
from segops.dsl.evaluator import EventColumns, UserHistory, epoch_milliseconds
from segops.warehouse import TenantWarehouse, Warehouse

from tests.integration.dsl.strategies import (
    MINUS_ZERO_NOT_IN,
    NOW,
    SIGNED_ZEROS,
    USERS,
    ZERO_IN,
    definitions,
    histories,
)
from tests.support.dsl_reference import Event, members
from tests.support.events import COLUMNS, fresh_tenant, insert_events

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def columns(events: Sequence[Event]) -> dict[str, EventColumns]:
    by_type: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_type[event.event_type].append(event)
    return {
        event_type: EventColumns(
            [epoch_milliseconds(e.occurred_at) for e in found],
            [epoch_milliseconds(e.received_at) for e in found],
            [orjson.dumps(e.payload).decode() for e in found],
        )
        for event_type, found in by_type.items()
    }


def in_memory(
    events: Sequence[Event], segments: list[tuple[int, Any]], now: datetime, users: Sequence[str] = USERS
) -> dict[int, set[str]]:
    """Segment id → members, evaluating every user's history on its own."""
    found: dict[int, set[str]] = {segment_id: set() for segment_id, _ in segments}
    for user in users:
        history = UserHistory(columns([e for e in events if e.user_id == user]), now)
        for segment_id in history.members(segments):
            found[segment_id].add(user)
    return found


def compiled(warehouse: Warehouse, tenant: int, segments: list[tuple[int, Any]], now: datetime) -> dict[int, set[str]]:
    query = compile_segments(segments)
    rows = TenantWarehouse(warehouse, tenant).query(query.sql, query.bind(now)).dicts()
    return {segment_id: {r["user_id"] for r in rows if r[column]} for segment_id, column in query.columns.items()}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(events=histories(), definition=definitions(), other=definitions())
@example(events=SIGNED_ZEROS, definition=ZERO_IN, other=MINUS_ZERO_NOT_IN)
def test_evaluator_agrees_with_compiled_sql_and_reference(
    warehouse: Warehouse, events: list[Event], definition: dict[str, Any], other: dict[str, Any]
) -> None:
    # GIVEN a random history (events on window edges, at `now` and after it) and two random definitions
    tenant = fresh_tenant()
    insert_events(warehouse, tenant, events)
    segments = [(1, parse_definition(definition)), (2, parse_definition(other))]
    # WHEN each user's history is evaluated in memory
    answer = in_memory(events, segments, NOW)
    # THEN it is exactly what ClickHouse computes for the tenant, and what the reference says
    assert answer == compiled(warehouse, tenant, segments, NOW)
    assert answer == {1: members(events, definition, NOW), 2: members(events, other, NOW)}


@settings(max_examples=200, deadline=None)
@given(events=histories(), definition=definitions(max_leaves=6))
@example(events=SIGNED_ZEROS, definition=ZERO_IN)
@example(events=SIGNED_ZEROS, definition=MINUS_ZERO_NOT_IN)
def test_evaluator_agrees_with_reference_on_many_more_cases(events: list[Event], definition: dict[str, Any]) -> None:
    # The same agreement without ClickHouse, so it can afford ten times the examples.
    assert in_memory(events, [(1, parse_definition(definition))], NOW)[1] == members(events, definition, NOW)


@settings(max_examples=60, deadline=None)
@given(
    events=histories(max_size=15),
    added=histories(max_size=1).filter(bool),
    definition=definitions(),
    other=definitions(),
)
def test_adding_an_event_equals_evaluating_the_longer_history(
    events: list[Event], added: list[Event], definition: dict[str, Any], other: dict[str, Any]
) -> None:
    # GIVEN a user's history indexed once, and one more event (maybe after `now`: then it does not exist)
    # (received an hour after the history, so no two identifies tie on (occurred_at, received_at))
    extra = replace(added[0], received_at=added[0].received_at + timedelta(hours=1))
    mine = [e for e in events if e.user_id == extra.user_id]
    segments = [(1, parse_definition(definition)), (2, parse_definition(other))]
    base = UserHistory(columns(mine), NOW)
    before = base.members(segments)  # fills the indexes the copy then shares
    # WHEN the event is added to the evaluated history
    payload = orjson.dumps(extra.payload).decode()
    after = base.with_event(extra.event_type, extra.occurred_at, extra.received_at, payload)
    # THEN both histories answer as if each were indexed from scratch (the reference, independently)
    assert before == {sid for sid, d in ((1, definition), (2, other)) if extra.user_id in members(mine, d, NOW)}
    longer = [*mine, extra]
    assert after.members(segments) == {
        sid for sid, d in ((1, definition), (2, other)) if extra.user_id in members(longer, d, NOW)
    }


def test_milliseconds_are_those_of_a_bound_datetime64(warehouse: Warehouse) -> None:
    # A bound `now` with microseconds is truncated to the millisecond by ClickHouse; so here.
    moments = [AT.replace(microsecond=us) for us in (0, 999, 1_000, 123_999, 999_999)]
    moments.append(datetime(2026, 3, 1, 12, 0, 0, 500_500))  # naive means UTC
    for moment in moments:
        sql = "SELECT toUnixTimestamp64Milli({t:DateTime64(3, 'UTC')})"
        assert epoch_milliseconds(moment) == warehouse.query(sql, {"t": moment}).scalar(), moment


def test_an_invalid_payload_has_no_properties_as_in_clickhouse(warehouse: Warehouse) -> None:
    # GIVEN a stored payload that is not JSON (nothing writes one; the evaluator must not fail on it)
    tenant = fresh_tenant()
    warehouse.insert("events", COLUMNS, [(tenant, uuid.uuid4(), "", "u", "a", AT, AT, '{"total": 1')])
    history = UserHistory({"a": EventColumns([epoch_milliseconds(AT)], [epoch_milliseconds(AT)], ['{"total": 1'])}, AT)
    where = [{"property": "total", "operator": "not_exists"}]
    count = {"type": "event_count", "event_type": "a", "operator": "eq", "value": 1, "where": where}
    segments = [(1, parse_definition({"logic": "AND", "conditions": [count]}))]
    # THEN both read it as an event without properties
    assert history.members(segments) == {1}
    assert compiled(warehouse, tenant, segments, AT) == {1: {"u"}}


def test_window_and_recency_edges_agree_to_the_millisecond(warehouse: Warehouse) -> None:
    # GIVEN one user per offset around each window's edge, `now` and just after it
    windows = (1, 2.5, 1 / 3)
    offsets = sorted({0, 1, -1} | {e - round(w * 86_400_000) for w in windows for e in (-1, 0, 1)})
    events = [Event(f"u{offset}", "a", NOW + timedelta(milliseconds=offset), NOW, {"total": 1}) for offset in offsets]
    tenant = fresh_tenant()
    insert_events(warehouse, tenant, events)
    segments: list[tuple[int, Any]] = []
    for w in windows:
        for condition in (
            {"type": "event_count", "event_type": "a", "operator": "eq", "value": 1, "window_days": w},
            {"type": "monetary", "event_type": "a", "property": "total", "metric": "sum", "operator": "gte",
             "value": 1, "window_days": w},
            *({"type": "recency", "event_type": "a", "operator": op, "window_days": w} for op in ("lt", "lte", "gt")),
        ):  # fmt: skip
            segments.append((len(segments), parse_definition({"logic": "AND", "conditions": [condition]})))
    # THEN the in-memory answer is ClickHouse's, condition by condition
    answer = in_memory(events, segments, NOW, users=[e.user_id for e in events])
    assert answer == compiled(warehouse, tenant, segments, NOW)
    assert all(answer[segment_id] for segment_id, _ in segments[:2])  # the edges are really exercised


def test_json_types_never_cross_as_in_clickhouse(warehouse: Warehouse) -> None:
    # GIVEN one user per JSON value of `v` (booleans, equal-looking numbers and strings, null, objects)
    values: list[Any] = [True, False, 1, 1.0, 0, -0.0, 2.5, "1", "", "true", None, {"k": 1}, [1]]
    events = [Event(f"u{i}", "a", NOW - timedelta(hours=1), NOW, {"v": v}) for i, v in enumerate(values)]
    events.append(Event("absent", "a", NOW - timedelta(hours=1), NOW, {}))
    tenant = fresh_tenant()
    insert_events(warehouse, tenant, events)
    # AND a where filter of every operator against operands of every type
    # ("true" and '{"k":1}' are the JSON text ClickHouse gives for a boolean and an object: only the
    # strings may match them; "tru" cannot begin any such text.)
    operands: list[Any] = [1, 1.0, 0, True, False, "1", "", "tru", "true", '{"k":1}']
    filters: list[dict[str, Any]] = [{"property": "v", "operator": op} for op in ("exists", "not_exists")]
    filters += [{"property": "v", "operator": op, "value": o} for op in ("eq", "neq") for o in operands]
    filters += [
        {"property": "v", "operator": op, "value": o}
        for op in ("gt", "gte", "lt", "lte")
        for o in operands
        if not isinstance(o, bool)
    ]
    # (`in` is `eq` per element, so -0.0 and 0 are each in a list holding the other.)
    lists: list[list[Any]] = [operands, [-0.0], [0.0, "1"], [True, "1"]]
    filters += [{"property": "v", "operator": op, "value": v} for op in ("in", "not_in") for v in lists]
    filters += [{"property": "v", "operator": "contains", "value": o} for o in ("", "1", "ru")]
    segments = [
        (i, parse_definition({"logic": "AND", "conditions": [
            {"type": "event_count", "event_type": "a", "operator": "gte", "value": 1, "where": [f]}]}))
        for i, f in enumerate(filters)
    ]  # fmt: skip
    # THEN the in-memory answer is ClickHouse's, filter by filter
    users = [e.user_id for e in events]
    assert in_memory(events, segments, NOW, users) == compiled(warehouse, tenant, segments, NOW)


def test_counts_past_int64_compare_as_the_evaluator_compares_them(warehouse: Warehouse) -> None:
    # GIVEN a user with one event, and thresholds beyond Int64 (2^63 read as an Int64 is negative)
    tenant = fresh_tenant()
    events = [Event(USERS[0], "a", NOW - timedelta(days=1), NOW - timedelta(days=1), {})]
    insert_events(warehouse, tenant, events)
    thresholds = [("gte", 2**64 - 1), ("lt", 2**63), ("lte", 2**63 - 1), ("gt", 2**63)]
    counts = [{"type": "event_count", "event_type": "a", "operator": op, "value": v} for op, v in thresholds]
    segments = [(i, parse_definition({"logic": "AND", "conditions": [c]})) for i, c in enumerate(counts, start=1)]
    # WHEN ClickHouse computes them and the sandbox's evaluator evaluates the user
    # THEN both answer as integers do: one event is below every threshold
    expected = {1: set(), 2: {USERS[0]}, 3: {USERS[0]}, 4: set()}
    assert compiled(warehouse, tenant, segments, NOW) == expected
    assert in_memory(events, segments, NOW, USERS[:1]) == expected
