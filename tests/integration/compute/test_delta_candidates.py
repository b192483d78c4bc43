"""A delta's candidates come from `event_arrivals` and `event_days` (migration 0610 re-sorted it by
time and dropped `event_timeline`): every window crossing and every newly visible event is found to
the millisecond, across midnight, and the migration keeps every existing event, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from segops.compute import plan
from segops.dsl import parse_definition
from segops.segments.models import ComputeState, Segment
from segops.warehouse import TenantWarehouse
from segops.warehouse.base import Warehouse
from segops.warehouse.migrations import migrate

from tests.support.backends import BACKENDS, fresh_database
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events

MS = timedelta(milliseconds=1)
WEEK = timedelta(days=7)
# The last compute ran half an hour before midnight, this one half an hour after it: every range
# the delta reads spans two days.
LAST = datetime(2026, 4, 20, 23, 30, tzinfo=UTC)
NOW = datetime(2026, 4, 21, 0, 30, tzinfo=UTC)
WINDOWED = {"type": "event_count", "event_type": "order", "operator": "gte", "value": 1, "window_days": 7}
UNWINDOWED = {"type": "event_count", "event_type": "page", "operator": "gte", "value": 1}


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    with fresh_database(request, chdb_path, migrated=False) as built:
        yield built


def ev(user: str, kind: str, at: datetime) -> Event:
    return Event(user, kind, at, at, {"total": 5} if kind == "order" else {})


def _target(warehouse: Warehouse) -> plan.Target:
    # Arrivals since the warehouse's clock now: none (this test is about the time ranges alone).
    arrivals_from = warehouse.query("SELECT now64(3) AS now").scalar().replace(tzinfo=UTC) + timedelta(seconds=1)
    definition = parse_definition({"logic": "OR", "conditions": [WINDOWED, UNWINDOWED]})
    segment = Segment(id=1, tenant=1, name="s", definition=definition.model_dump(), version=1)
    state = ComputeState(segment_id=1, last_computed_at=LAST, watermark=arrivals_from)
    return plan.Target(segment, definition, state, uuid.uuid4().hex, "delta")


def _windowed_target(segment_id: int, hours: int, arrivals_from: datetime) -> plan.Target:
    condition = {**WINDOWED, "event_type": f"order_{hours}", "window_days": hours / 24}
    definition = parse_definition({"logic": "AND", "conditions": [condition]})
    segment = Segment(id=segment_id, tenant=1, name="s", definition=definition.model_dump(), version=1)
    state = ComputeState(segment_id=segment_id, last_computed_at=LAST, watermark=arrivals_from)
    return plan.Target(segment, definition, state, uuid.uuid4().hex, "delta")


def _candidates(warehouse: Warehouse, tenant: int, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    monkeypatch.setattr(plan, "ARRIVAL_MARGIN", timedelta(0))
    select, params = plan.delta_candidates([_target(warehouse)], NOW)
    return {str(r[0]) for r in TenantWarehouse(warehouse, tenant).query(select, params).rows}


def test_candidates_are_exactly_the_events_that_appeared_or_crossed_a_window(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN events on every edge of (LAST, NOW] and of [LAST - 7 days, NOW - 7 days], and another tenant's
    migrate(warehouse)
    tenant, other = fresh_tenant(), fresh_tenant()
    found = {
        "at-last": ev("at-last", "page", LAST),
        "after-last": ev("after-last", "page", LAST + MS),
        "before-midnight": ev("before-midnight", "page", datetime(2026, 4, 20, 23, 59, 59, 999000, tzinfo=UTC)),
        "at-now": ev("at-now", "page", NOW),
        "future": ev("future", "order", NOW + MS),
        "left-window": ev("left-window", "order", LAST - WEEK),
        "too-old": ev("too-old", "order", LAST - WEEK - MS),
        "crossed-at-midnight": ev("crossed-at-midnight", "order", datetime(2026, 4, 14, tzinfo=UTC)),
        "crossing-now": ev("crossing-now", "order", NOW - WEEK),
        "not-yet-crossing": ev("not-yet-crossing", "order", NOW - WEEK + MS),
        "unwindowed-type": ev("unwindowed-type", "page", NOW - WEEK),
    }
    insert_events(warehouse, tenant, found.values())
    insert_events(warehouse, other, [ev("other-tenant", "order", NOW - WEEK), ev("other-tenant", "page", NOW)])
    # WHEN the delta at NOW selects its candidates
    candidates = _candidates(warehouse, tenant, monkeypatch)
    # THEN exactly the users whose events appeared in (LAST, NOW] or whose order left the 7-day window
    appeared = {"after-last", "before-midnight", "at-now"}
    assert candidates == appeared | {"left-window", "crossed-at-midnight", "crossing-now"}


def test_a_pass_with_more_windows_than_crossings_shares_them_and_misses_no_candidate(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 600 segments in one delta pass, each with a window of its own (1 to 600 hours: 1,200
    # parameters one crossing each, over a ClickHouse server's 1,000 request fields), a user whose
    # event crosses each 7th window now, and one whose events left even the longest window before LAST
    migrate(warehouse)
    monkeypatch.setattr(plan, "ARRIVAL_MARGIN", timedelta(0))
    tenant = fresh_tenant()
    hours = range(1, 601)
    crossing = {f"crosses-{h}": ev(f"crosses-{h}", f"order_{h}", NOW - timedelta(hours=h)) for h in hours[::7]}
    old = [ev("too-old", f"order_{h}", LAST - timedelta(hours=600) - MS) for h in (1, 300, 600)]
    insert_events(warehouse, tenant, [*crossing.values(), *old])
    # (arrivals since the warehouse's clock now: none, as in `_target`)
    arrivals_from = warehouse.query("SELECT now64(3) AS now").scalar().replace(tzinfo=UTC) + timedelta(seconds=1)
    targets = [_windowed_target(k + 1, h, arrivals_from) for k, h in enumerate(hours)]
    # WHEN the pass selects its candidates
    select, params = plan.delta_candidates(targets, NOW)
    candidates = {str(r[0]) for r in TenantWarehouse(warehouse, tenant).query(select, params).rows}
    # THEN the statement binds at most three parameters per shared crossing, every crossing user is a
    # candidate (a shared crossing may add more: each is evaluated exactly) and the oldest user is not
    assert len(params) <= 3 + 3 * plan.MAX_CROSSINGS
    assert candidates == set(crossing)


def test_migration_0610_keeps_every_event_and_drops_the_timeline(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a warehouse at the schema before 0610, holding events of two tenants over several months
    migrate(warehouse, through=609)
    tenant, other = fresh_tenant(), fresh_tenant()
    history = [ev("u1", "order", NOW - timedelta(days=40 * i)) for i in range(4)] + [
        ev("u2", "context_identified", LAST - WEEK),
        ev("u3", "page", LAST + MS),
    ]
    insert_events(warehouse, tenant, history)
    insert_events(warehouse, other, [ev("o1", "page", NOW)])
    rows = (
        "SELECT user_id, event_type, day, occurred_at, received_at, total, identity FROM event_days "
        "WHERE tenant_id = {tenant_id:UInt64} ORDER BY user_id, occurred_at, event_type"
    )
    before = TenantWarehouse(warehouse, tenant).query(rows).rows
    assert len(before) == len(history)
    # WHEN the migration runs
    assert migrate(warehouse, through=610) == ["0610_event_days_by_time.sql"]
    # THEN `event_days` holds the same rows, sorted by time, and the timeline and its view are gone
    assert TenantWarehouse(warehouse, tenant).query(rows).rows == before
    tables = dict(
        warehouse.query(
            "SELECT name, sorting_key FROM system.tables WHERE database = {database:String}",
            {"database": warehouse.database},
        ).rows
    )
    assert tables["event_days"] == "tenant_id, day, occurred_at"
    assert not {"event_timeline", "event_timeline_mv", "event_days_by_time"} & tables.keys()
    # AND later inserts reach it through the view again, and the delta reads them
    insert_events(warehouse, tenant, [ev("u4", "order", LAST - WEEK)])
    assert len(TenantWarehouse(warehouse, tenant).query(rows).rows) == len(history) + 1
    assert _candidates(warehouse, tenant, monkeypatch) == {"u1", "u3", "u4"}
