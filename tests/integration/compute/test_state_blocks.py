"""Migration 0630: every granule of `user_day_states` is a compressed block of its own, in the parts
it rewrites and in those written after it, so a delta's read of its candidates' state rows
decompresses only their granules (docs/performance.md, "Delta statements")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from segops.warehouse.base import Warehouse
from segops.warehouse.migrations import migrate

from tests.integration.dsl.strategies import NOW
from tests.support.backends import BACKENDS, fresh_database
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events

STATES = (
    "SELECT user_id, event_type, day, sum(events), sum(total_sum), max(last_at) FROM user_day_states "
    "WHERE tenant_id = {tenant:UInt64} GROUP BY ALL ORDER BY ALL"
)


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    with fresh_database(request, chdb_path, migrated=False) as built:
        yield built


def orders(users: range) -> list[Event]:
    return [Event(f"user-{u:05d}", "order", NOW - timedelta(days=1), NOW, {"total": u}) for u in users]


def granules_sharing_a_block(warehouse: Warehouse) -> tuple[int, int]:
    """(granules where some column's mark points inside a compressed block, granules) of `user_day_states`."""
    # Each stream's `<stream>.mark` (COLUMNS): (its block's offset in the file, the granule's offset in the block).
    [(sharing, marks)] = warehouse.query(
        "SELECT countIf(arrayExists(mark -> tupleElement(mark, 2) != 0, [COLUMNS('\\.mark$')])), count() "
        "FROM mergeTreeIndex({database:String}, 'user_day_states', with_marks = true) WHERE rows_in_granule > 0",
        {"database": warehouse.database},
    ).rows
    return int(sharing), int(marks)


def test_migration_0630_writes_one_compressed_block_per_state_granule(warehouse: Warehouse) -> None:
    # GIVEN states of 3,000 users written before 0630: 256-row granules in 64 KiB blocks, in the
    # wide parts (a file per column) a large tenant's states are in (these few rows would otherwise
    # make a compact part: one file for every column, under 10 MiB, a bounded read whatever its blocks)
    migrate(warehouse, through=629)
    warehouse.command("ALTER TABLE user_day_states MODIFY SETTING min_bytes_for_wide_part = 0")
    tenant = fresh_tenant()
    insert_events(warehouse, tenant, orders(range(3000)))
    before = warehouse.query(STATES, {"tenant": tenant}).rows
    sharing, marks = granules_sharing_a_block(warehouse)
    assert len(before) == 3000 and marks >= 10 and sharing > 0
    # WHEN the migration runs
    assert migrate(warehouse, through=630) == ["0630_user_day_states_blocks.sql"]
    # THEN the same states, each granule (of every column) starting a block of its own
    assert warehouse.query(STATES, {"tenant": tenant}).rows == before
    assert granules_sharing_a_block(warehouse)[0] == 0
    # AND so do the parts the view writes afterwards
    insert_events(warehouse, tenant, orders(range(3000, 6000)))
    assert len(warehouse.query(STATES, {"tenant": tenant}).rows) == 6000
    sharing, marks = granules_sharing_a_block(warehouse)
    assert sharing == 0 and marks >= 20
