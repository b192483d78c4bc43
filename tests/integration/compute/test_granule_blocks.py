"""Migration 0630: every granule of the tables a delta reads by candidate (`user_day_states`,
`user_memberships`) is a compressed block of its own, in the parts it rewrites and in those written
after it, so those reads decompress only the candidates' granules (docs/performance.md, "Delta
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


def granules_sharing_a_block(warehouse: Warehouse, table: str) -> tuple[int, int]:
    """(granules where some stream's mark points inside a compressed block, granules) of `table`."""
    # Each stream's `<stream>.mark` (COLUMNS): (its block's offset in the file, the granule's offset in the block).
    [(sharing, marks)] = warehouse.query(
        "SELECT countIf(arrayExists(mark -> tupleElement(mark, 2) != 0, [COLUMNS('\\.mark$')])), count() "
        "FROM mergeTreeIndex({database:String}, {table:String}, with_marks = true) WHERE rows_in_granule > 0",
        {"database": warehouse.database, "table": table},
    ).rows
    return int(sharing), int(marks)


@pytest.mark.parametrize(
    ("table", "write", "read"),
    [("user_day_states", write_orders, STATES), ("user_memberships", write_memberships, MEMBERSHIPS)],
)
def test_migration_0630_writes_one_compressed_block_per_granule(
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
    sharing, marks = granules_sharing_a_block(warehouse, table)
    assert len(before) == 3000 and marks >= 10 and sharing > 0
    # WHEN the migration runs
    assert migrate(warehouse, through=630) == ["0630_granule_blocks.sql"]
    # THEN the same rows, each granule (of every stream) starting a block of its own
    assert sorted(warehouse.query(read, {"tenant": tenant}).rows) == sorted(before)
    assert granules_sharing_a_block(warehouse, table)[0] == 0
    # AND so do the parts written afterwards
    write(warehouse, tenant, range(3000, 6000))
    assert len(warehouse.query(read, {"tenant": tenant}).rows) == 6000
    sharing, marks = granules_sharing_a_block(warehouse, table)
    assert sharing == 0 and marks >= 20
