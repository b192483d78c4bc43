"""The compiled SQL, run on ClickHouse (chDB), agrees with the reference evaluator of docs/design.md §5."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from segops.dsl import compile_segment, compile_segments, parse_definition
from segops.warehouse import TenantWarehouse, Warehouse

from tests.integration.dsl.strategies import (
    HOSTILE,
    MINUS_ZERO_NOT_IN,
    NOW,
    SIGNED_ZEROS,
    ZERO_IN,
    definitions,
    histories,
)
from tests.support.dsl_reference import Event, members
from tests.support.events import fresh_tenant, insert_events

DAY = timedelta(days=1)


def evaluate(warehouse: Warehouse, tenant_id: int, definition: dict[str, Any], now: datetime = NOW) -> set[str]:
    compiled = compile_segment(parse_definition(definition))
    return {row[0] for row in TenantWarehouse(warehouse, tenant_id).query(compiled.sql, compiled.bind(now)).rows}


def history(warehouse: Warehouse, *events: Event) -> int:
    tenant = fresh_tenant()
    insert_events(warehouse, tenant, events)
    return tenant


def ev(user: str, kind: str, ago: timedelta, payload: dict[str, Any] | None = None, received: int = 0) -> Event:
    return Event(user, kind, NOW - ago, NOW - ago + timedelta(milliseconds=received), payload or {})


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "AND", "conditions": [condition]}


def test_never_did_it_has_infinite_recency(warehouse: Warehouse) -> None:
    # GIVEN u1 viewed 10 days ago, u2 never viewed but did something else
    tenant = history(warehouse, ev("u1", "page_viewed", 10 * DAY), ev("u2", "signup", DAY))
    # THEN gt/gte include the user who never did it; lt/lte do not
    recency = {"type": "recency", "event_type": "page_viewed", "window_days": 30}
    assert evaluate(warehouse, tenant, one({**recency, "operator": "gt"})) == {"u2"}
    assert evaluate(warehouse, tenant, one({**recency, "operator": "lt"})) == {"u1"}


def test_window_boundary_is_exclusive_and_future_events_do_not_exist(warehouse: Warehouse) -> None:
    # GIVEN one event exactly 7 days old, one a millisecond younger, one in the future
    tenant = history(
        warehouse,
        ev("edge", "a", 7 * DAY),
        ev("inside", "a", 7 * DAY - timedelta(milliseconds=1)),
        ev("future", "a", -timedelta(milliseconds=1)),
    )
    condition = {"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}
    # THEN only the event strictly inside the window counts, and the future user is not in the universe
    assert evaluate(warehouse, tenant, one({**condition, "window_days": 7})) == {"inside"}
    assert evaluate(warehouse, tenant, one({**condition, "operator": "eq", "value": 0})) == set()


def test_empty_metrics(warehouse: Warehouse) -> None:
    # GIVEN a user whose orders have no numeric total (a string, a boolean, nothing)
    tenant = history(
        warehouse, ev("u", "order", DAY, {"total": "12"}), ev("u", "order", DAY, {"total": True}), ev("u", "order", DAY)
    )
    base = {"type": "monetary", "event_type": "order", "property": "total", "operator": "eq", "value": 0}
    # THEN sum and count of nothing are 0, while avg/min/max of nothing make the condition false
    assert evaluate(warehouse, tenant, one({**base, "metric": "sum"})) == {"u"}
    assert evaluate(warehouse, tenant, one({**base, "metric": "count"})) == {"u"}
    for metric in ("avg", "min", "max"):
        assert evaluate(warehouse, tenant, one({**base, "metric": metric})) == set()
        assert evaluate(warehouse, tenant, one({**base, "metric": metric, "operator": "neq"})) == set()


def test_user_properties_latest_identify_wins_and_missing_satisfies_negations(warehouse: Warehouse) -> None:
    # GIVEN u1 identified twice (pro then free), u2 never identified
    tenant = history(
        warehouse,
        ev("u1", "context_identified", 3 * DAY, {"plan": "pro", "seats": 5}),
        ev("u1", "context_identified", DAY, {"plan": "free", "seats": "5"}),
        ev("u2", "page_viewed", DAY),
    )

    def where(operator: str, value: Any = None, prop: str = "plan") -> set[str]:
        condition = {"type": "user_property", "property": prop, "operator": operator}
        return evaluate(warehouse, tenant, one(condition if value is None else {**condition, "value": value}))

    assert where("eq", "free") == {"u1"}
    assert where("neq", "free") == {"u2"}
    assert where("not_in", ["pro"]) == {"u1", "u2"}
    assert where("not_exists") == {"u2"}
    # numeric-looking strings are strings: "5" is not 5 and does not order against numbers
    assert where("eq", 5, "seats") == set()
    assert where("gte", 1, "seats") == set()
    assert where("gte", "4", "seats") == {"u1"}
    assert where("contains", "re", "plan") == {"u1"}


def test_dotted_paths_and_where_filters(warehouse: Warehouse) -> None:
    tenant = history(
        warehouse,
        ev("de", "order", DAY, {"shipping": {"country": "DE"}, "total": 10}),
        ev("us", "order", DAY, {"shipping": {"country": "US"}, "total": 10}),
        ev("flat", "order", DAY, {"shipping.country": "DE", "total": 10}),
    )
    condition = {
        "type": "monetary",
        "event_type": "order",
        "property": "total",
        "metric": "sum",
        "operator": "gte",
        "value": 10,
        "where": [{"property": "shipping.country", "operator": "eq", "value": "DE"}],
    }
    assert evaluate(warehouse, tenant, one(condition)) == {"de"}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_are_values_not_sql(warehouse: Warehouse, hostile: str) -> None:
    # GIVEN a user whose payload holds the hostile string under a hostile key
    tenant = history(warehouse, ev("u", "a", DAY, {hostile: {hostile: hostile}}), ev("v", "a", DAY))

    def definition(text: str) -> dict[str, Any]:
        where = [{"property": f"{text}.{text}", "operator": "eq", "value": text}]
        return one({"type": "event_count", "event_type": "a", "operator": "gte", "value": 1, "where": where})

    # THEN the SQL text is exactly that of a benign string (a word, or one spelled like other JSON,
    # which keeps its type check), and the value matches exactly the one user
    def sql(text: str) -> str:
        return compile_segment(parse_definition(definition(text))).sql

    assert sql(hostile) in (sql("x"), sql("1"))
    assert evaluate(warehouse, tenant, definition(hostile)) == {"u"}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(events=histories(), definition=definitions(), other=definitions())
@example(events=SIGNED_ZEROS, definition=ZERO_IN, other=MINUS_ZERO_NOT_IN)
def test_compiled_sql_agrees_with_reference(
    warehouse: Warehouse, events: list[Event], definition: dict[str, Any], other: dict[str, Any]
) -> None:
    # GIVEN a random history and two random definitions
    tenant = history(warehouse, *events)
    # WHEN compiled alone and together in one pass
    alone = evaluate(warehouse, tenant, definition)
    together = compile_segments([(1, parse_definition(definition)), (2, parse_definition(other))])
    rows = TenantWarehouse(warehouse, tenant).query(together.sql, together.bind(NOW)).dicts()
    # THEN both agree with the reference evaluator
    expected = members(events, definition, NOW)
    assert alone == expected
    assert {r["user_id"] for r in rows if r["s_1"]} == expected
    assert {r["user_id"] for r in rows if r["s_2"]} == members(events, other, NOW)
    # AND without the members filter the same users hold each column, and nobody is dropped
    every = compile_segments([(1, parse_definition(definition)), (2, parse_definition(other))], members_only=False)
    all_rows = TenantWarehouse(warehouse, tenant).query(every.sql, every.bind(NOW)).dicts()
    by_user = sorted((r for r in all_rows if r["s_1"] or r["s_2"]), key=lambda r: str(r["user_id"]))
    assert by_user == sorted(rows, key=lambda r: str(r["user_id"]))
    assert {r["user_id"] for r in all_rows} == {e.user_id for e in events if e.occurred_at <= NOW}


def test_state_days_and_boundary_days_count_each_event_once(warehouse: Warehouse) -> None:
    # GIVEN events of one type on every edge a window can have: both sides of `now - W` (on the
    # boundary day), the whole days next to it, `now`'s day before and after `now`; one user per
    # event and one user with all of them (distinct totals, so a double count changes the sum)
    offsets = sorted(
        {o for w in (86_400_000, 216_000_000, 2_592_000_000) for o in (-w - 86_400_000, -w - 1, -w, -w + 1)}
        | {-w + 86_400_000 for w in (216_000_000, 2_592_000_000)}
        | {-43_200_001, -1, 0, 1, 3_600_000}
    )
    events = []
    for i, offset in enumerate(offsets):
        at = NOW + timedelta(milliseconds=offset)
        for user in (f"o{i}", "all"):
            events.append(Event(user, "a", at, at, {"total": i + 1}))
    events.append(Event("all", "context_identified", NOW - timedelta(milliseconds=1), NOW, {"plan": "late"}))
    events.append(Event("all", "context_identified", NOW - 3 * DAY, NOW, {"plan": "early"}))
    tenant = history(warehouse, *events)
    definitions = []
    for window in (None, 1, 2.5, 30):
        scope = {"event_type": "a"} if window is None else {"event_type": "a", "window_days": window}
        in_window = [
            i + 1 for i, o in enumerate(offsets) if o <= 0 and (window is None or o > -round(window * 86_400_000))
        ]
        definitions.append({"type": "event_count", **scope, "operator": "eq", "value": len(in_window)})
        definitions.append({"type": "event_count", **scope, "operator": "eq", "value": 1})
        for metric, value in (("sum", sum(in_window)), ("avg", sum(in_window) / len(in_window))):
            definitions.append(
                {"type": "monetary", **scope, "property": "total", "metric": metric, "operator": "eq", "value": value}
            )
        for metric in ("min", "max", "count"):
            for value in (min(in_window), max(in_window), len(in_window)):
                definitions.append(
                    {
                        "type": "monetary",
                        **scope,
                        "property": "total",
                        "metric": metric,
                        "operator": "eq",
                        "value": value,
                    }
                )
    for days in (0.5, 1, 2.5):
        definitions.append({"type": "recency", "event_type": "a", "operator": "lt", "window_days": days})
    definitions.append({"type": "user_property", "property": "plan", "operator": "eq", "value": "late"})
    # conditions the states cannot answer put raw rows of both types into the same pass
    for event_type in ("a", "context_identified"):
        exists = [{"property": "total", "operator": "exists"}]
        definitions.append(
            {"type": "event_count", "event_type": event_type, "operator": "gte", "value": 1, "where": exists}
        )
    # WHEN all are compiled into one stored pass
    compiled = compile_segments([(i, parse_definition(one(d))) for i, d in enumerate(definitions)])
    rows = TenantWarehouse(warehouse, tenant).query(compiled.sql, compiled.bind(NOW)).dicts()
    # THEN each segment holds exactly the reference's members
    for i, definition in enumerate(definitions):
        assert {r["user_id"] for r in rows if r[f"s_{i}"]} == members(events, one(definition), NOW), definition


def test_raw_branch_aggregates_keep_negative_values(warehouse: Warehouse) -> None:
    # GIVEN orders with negative totals, and conditions that read them through the raw-events branch
    tenant = history(
        warehouse,
        ev("u", "order", DAY, {"total": -5, "refund": True}),
        ev("u", "order", 2 * DAY, {"total": -3, "refund": True}),
        ev("v", "page", DAY),
    )
    refunds = [{"property": "refund", "operator": "eq", "value": True}]
    base = {"type": "monetary", "event_type": "order", "property": "total", "operator": "eq", "where": refunds}
    # THEN sum, avg, min and max are the negative values themselves
    for metric, value in (("sum", -8), ("avg", -4), ("min", -5), ("max", -3)):
        assert evaluate(warehouse, tenant, one({**base, "metric": metric, "value": value})) == {"u"}, metric
