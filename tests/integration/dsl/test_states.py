"""The per-user day states of migration 0600: backfilled from existing events, fed by every later
insert (late ones included), never fed twice by a deduplicated block, and read by the compiler to
the same results as the raw events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from segops.dsl import EventSource, compile_segments, parse_definition
from segops.warehouse import TenantWarehouse, Warehouse
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import migrate

from tests.integration.dsl.strategies import NOW
from tests.support.dsl_reference import Event, members
from tests.support.events import COLUMNS, fresh_tenant, insert_events

DAY = timedelta(days=1)
RAW = EventSource("events", "tenant_id = {tenant_id:UInt64}")
DEFINITIONS: list[dict[str, Any]] = [
    {"type": "event_count", "event_type": "order", "operator": "gte", "value": 2},
    {"type": "event_count", "event_type": "order", "operator": "eq", "value": 1, "window_days": 7},
    {"type": "monetary", "event_type": "order", "property": "total", "metric": "sum", "operator": "gte", "value": 30},
    {"type": "monetary", "event_type": "order", "property": "total", "metric": "max", "operator": "lt", "value": 25},
    {"type": "monetary", "event_type": "order", "property": "total", "metric": "avg", "operator": "gt", "value": 9},
    {"type": "recency", "event_type": "order", "operator": "lt", "window_days": 2.5},
    {"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"},
    {"type": "user_property", "property": "plan", "operator": "not_exists"},
    {
        "type": "event_count",
        "event_type": "order",
        "operator": "gte",
        "value": 1,
        "where": [{"property": "coupon", "operator": "exists"}],
    },
]


def ev(user: str, kind: str, ago: timedelta, payload: dict[str, Any] | None = None) -> Event:
    return Event(user, kind, NOW - ago, NOW - ago + timedelta(seconds=1), payload or {})


def memberships(warehouse: Warehouse, tenant: int, source: EventSource | None = None) -> list[set[str]]:
    definitions = [(i, parse_definition({"logic": "AND", "conditions": [d]})) for i, d in enumerate(DEFINITIONS)]
    compiled = compile_segments(definitions, source)
    rows = TenantWarehouse(warehouse, tenant).query(compiled.sql, compiled.bind(NOW)).dicts()
    return [{r["user_id"] for r in rows if r[f"s_{i}"]} for i in range(len(DEFINITIONS))]


def expected(events: list[Event]) -> list[set[str]]:
    return [members(events, {"logic": "AND", "conditions": [d]}, NOW) for d in DEFINITIONS]


def test_events_written_before_the_migration_are_backfilled_into_the_states(chdb_path: Path) -> None:
    # GIVEN a warehouse at the schema before the states, holding events of two tenants
    warehouse = ChdbWarehouse(chdb_path, f"states_{uuid.uuid4().hex[:12]}")
    migrate(warehouse, through=599)
    tenant, other = fresh_tenant(), fresh_tenant()
    before = [
        ev("u1", "order", 10 * DAY, {"total": 20}),
        ev("u1", "order", 3 * DAY, {"total": 15, "coupon": "X"}),
        ev("u1", "context_identified", 5 * DAY, {"plan": "pro"}),
        ev("u2", "order", 7 * DAY + timedelta(milliseconds=1), {"total": 5}),
        ev("u2", "order", 7 * DAY - timedelta(milliseconds=1), {"total": "5"}),
        ev("u3", "page", 40 * DAY),
        ev("u3", "order", timedelta(hours=1), {"total": 30}),
        ev("u4", "order", -DAY, {"total": 99}),  # after `now`: does not exist yet
    ]
    insert_events(warehouse, tenant, before)
    insert_events(warehouse, other, [ev("u1", "order", DAY, {"total": 1000})])
    # (ten years of monthly events: more months than one INSERT may write by default)
    monthly = [ev("old", "page", 31 * DAY * month) for month in range(1, 121)]
    insert_events(warehouse, other, monthly[:60])
    insert_events(warehouse, other, monthly[60:])
    # WHEN the states migration runs
    assert migrate(warehouse, through=600) == ["0600_user_states.sql"]
    # THEN the states hold every existing event once, per tenant
    wh = TenantWarehouse(warehouse, tenant)
    assert wh.query("SELECT sum(events) FROM user_day_states WHERE tenant_id = {tenant_id:UInt64}").scalar() == 8
    assert wh.query("SELECT count() FROM event_days WHERE tenant_id = {tenant_id:UInt64}").scalar() == 8
    # AND a compute reading them equals the raw compute and the reference
    assert memberships(warehouse, tenant) == memberships(warehouse, tenant, RAW) == expected(before)
    # WHEN later inserts arrive through the views: a late order, an older identify, a newer one
    later = [
        ev("u2", "order", 20 * DAY, {"total": 40}),
        ev("u1", "context_identified", 9 * DAY, {"plan": "free"}),
        ev("u3", "context_identified", 2 * DAY, {"plan": "free"}),
        ev("u3", "context_identified", DAY, {"plan": "pro"}),
    ]
    insert_events(warehouse, tenant, later)
    # THEN the older identify does not replace the newer one, and everything still agrees
    assert memberships(warehouse, tenant) == memberships(warehouse, tenant, RAW) == expected(before + later)
    assert memberships(warehouse, tenant)[6] == {"u1", "u3"}


def test_a_block_dropped_as_duplicate_does_not_reach_the_states(chdb_path: Path) -> None:
    # GIVEN a migrated warehouse and a block inserted the way the event writer does (token, views deduplicated)
    warehouse = ChdbWarehouse(chdb_path, f"states_{uuid.uuid4().hex[:12]}")
    migrate(warehouse)
    tenant = fresh_tenant()
    settings = {"insert_deduplication_token": "block-1", "deduplicate_blocks_in_dependent_materialized_views": 1}
    row = (tenant, uuid.uuid4(), "", "u", "order", NOW - DAY, NOW - DAY, '{"total": 10}')
    warehouse.insert("events", COLUMNS, [row], settings=settings)
    # WHEN the identical block is inserted again (a redelivery racing past the writer's lookup)
    warehouse.insert("events", COLUMNS, [row], settings=settings)
    # THEN neither states table counts it twice
    wh = TenantWarehouse(warehouse, tenant)
    states = wh.query(
        "SELECT sum(events), sum(total_sum) FROM user_day_states WHERE tenant_id = {tenant_id:UInt64}"
    ).rows
    assert states == [(1, 10.0)]
    assert wh.query("SELECT count() FROM event_days WHERE tenant_id = {tenant_id:UInt64}").scalar() == 1
