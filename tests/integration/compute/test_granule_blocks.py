"""Migration 0630: the tables a delta reads by candidate (`user_day_states`, `user_memberships`) are
written in ~4 KiB compressed blocks, in the parts it rewrites and in those written after it, so
those reads decompress little more than the candidates' granules (docs/performance.md, "Delta
statements"), and the tables keep their rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from segops.warehouse.base import Warehouse
from segops.warehouse.identifiers import quote_identifier
from segops.warehouse.migrations import migrate

from tests.integration.dsl.strategies import NOW
from tests.support.backends import BACKENDS, fresh_database
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events

STATES = (
    "SELECT user_id, event_type, day, sum(events), sum(total_sum), max(last_at) FROM user_day_states "
    "WHERE tenant_id = {tenant:UInt64} GROUP BY ALL ORDER BY ALL"
)
MEMBERSHIPS = "SELECT user_id, segment_id, version, entered FROM user_memberships WHERE tenant_id = {tenant:UInt64}"
MEMBERSHIP_COLUMNS = ("tenant_id", "segment_id", "user_id", "version", "entered", "compute_id", "computed_at")


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    with fresh_database(request, chdb_path, migrated=False) as built:
        yield built


def write_orders(warehouse: Warehouse, tenant: int, users: range) -> None:
    """One order per user: a state row each."""
    events = [Event(f"user-{u:05d}", "order", NOW - timedelta(days=1), NOW, {"total": u}) for u in users]
    insert_events(warehouse, tenant, events)


def write_memberships(warehouse: Warehouse, tenant: int, users: range) -> None:
    """One entry per user into segment 1 (the view copies it to `user_memberships`)."""
    rows = [(tenant, 1, f"user-{u:05d}", 10, 1, uuid.uuid4().hex, NOW) for u in users]
    warehouse.insert("segment_memberships", MEMBERSHIP_COLUMNS, rows)


def granules_per_block(warehouse: Warehouse, table: str) -> tuple[int, int]:
    """(most granules in one compressed block of `user_id`, granules) of `table`: a candidate's read
    decompresses the whole block of its granule."""
    # `user_id.mark`: (its block's offset in the column's file, the granule's offset in that block).
    [(most, granules)] = warehouse.query(
        "SELECT max(granules), sum(granules) FROM (SELECT part_name, tupleElement(`user_id.mark`, 1) AS block, "
        "count() AS granules FROM mergeTreeIndex({database:String}, {table:String}, with_marks = true) "
        "WHERE rows_in_granule > 0 GROUP BY part_name, block)",
        {"database": warehouse.database, "table": table},
    ).rows
    return int(most), int(granules)


@pytest.mark.parametrize(
    ("table", "write", "read"),
    [("user_day_states", write_orders, STATES), ("user_memberships", write_memberships, MEMBERSHIPS)],
)
def test_migration_0630_writes_small_compressed_blocks(
    warehouse: Warehouse, table: str, write: Callable[[Warehouse, int, range], None], read: str
) -> None:
    # GIVEN 3,000 users' rows written before 0630: 256-row granules in 64 KiB blocks, in the wide
    # parts (a file per column) a large tenant's rows are in (these few rows would otherwise make a
    # compact part: one file for every column, under 10 MiB, a bounded read whatever its blocks)
    migrate(warehouse, through=629)
    warehouse.command(f"ALTER TABLE {quote_identifier(table)} MODIFY SETTING min_bytes_for_wide_part = 0")
    tenant = fresh_tenant()
    write(warehouse, tenant, range(3000))
    before = warehouse.query(read, {"tenant": tenant}).rows
    most, granules = granules_per_block(warehouse, table)
    assert len(before) == 3000 and granules >= 10 and most == granules  # ~30 KiB of user ids: one block
    # WHEN the migration runs
    assert migrate(warehouse, through=630) == ["0630_granule_blocks.sql"]
    # THEN the same rows, in blocks of ~4 KiB: at most 2 granules of ~2.5 KiB of user ids each
    assert sorted(warehouse.query(read, {"tenant": tenant}).rows) == sorted(before)
    assert granules_per_block(warehouse, table)[0] <= 2
    # AND so do the parts written afterwards
    write(warehouse, tenant, range(3000, 6000))
    assert len(warehouse.query(read, {"tenant": tenant}).rows) == 6000
    most, granules = granules_per_block(warehouse, table)
    assert most <= 2 and granules >= 20
