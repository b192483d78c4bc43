"""Usage retention (migration 0810_usage_retention): `usage` and `usage_units` carry a TTL of
`SEGOPS_USAGE_RETENTION_DAYS` on both warehouse backends — chDB in-process, and clickhouse-connect
over ClickHouse's HTTP protocol (`tests/support/clickhouse_http.py`) — and TTL merges drop the
rows past it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from segops.config import Settings
from segops.warehouse.base import Warehouse
from segops.warehouse.identifiers import quote_identifier
from segops.warehouse.migrations import MigrationParameters, migrate

from tests.support.backends import BACKENDS, fresh_database

USAGE_TABLES = ("usage", "usage_units")


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    """A fresh, unmigrated database per test on the requested backend."""
    with fresh_database(request, chdb_path, migrated=False) as built:
        yield built


def _ttl_days(warehouse: Warehouse, table: str) -> int | None:
    """The table's TTL in days on `hour`, as the server reports its definition; None without one."""
    engine = warehouse.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    ).scalar()
    # A bound parameter is kept as a cast: `toIntervalDay(_CAST(30, 'UInt32'))`.
    found = re.search(r"\bTTL hour \+ toIntervalDay\((?:_CAST\()?(\d+)", str(engine))
    return None if found is None else int(found[1])


def test_the_usage_tables_keep_rows_for_the_default_retention(warehouse: Warehouse) -> None:
    # GIVEN the usage tables as migration 0800 made them: no TTL
    migrate(warehouse, through=800)
    assert [_ttl_days(warehouse, table) for table in USAGE_TABLES] == [None, None]
    # WHEN migrated with the default settings
    migrate(warehouse)
    # THEN both tables carry the default TTL on the hour
    assert Settings().usage_retention_days == 400
    assert [_ttl_days(warehouse, table) for table in USAGE_TABLES] == [400, 400]


def test_rows_past_the_configured_retention_are_dropped_by_ttl_merges(warehouse: Warehouse) -> None:
    # GIVEN the schema migrated with a 30-day retention, and a row long past it beside one far ahead
    migrate(warehouse, parameters=MigrationParameters(usage_retention_days=30))
    assert [_ttl_days(warehouse, table) for table in USAGE_TABLES] == [30, 30]
    old, kept = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    for hour in (old, kept):
        warehouse.insert(
            "usage", ["tenant_id", "hour", "metric", "dimension", "value"], [[1, hour, "api_calls", "", 5]]
        )
        warehouse.insert(
            "usage_units",
            ["tenant_id", "metric", "dimension", "unit_id", "hour", "value"],
            [[1, "exports", "", f"e{hour.year}", hour, 1]],
        )
    # WHEN the tables merge
    for table in USAGE_TABLES:
        warehouse.command(f"OPTIMIZE TABLE {quote_identifier(table)} FINAL")
    # THEN only the row within the retention is left in each
    for table in USAGE_TABLES:
        years = warehouse.query(f"SELECT toYear(hour) FROM {quote_identifier(table)} ORDER BY hour").rows  # noqa: S608
        assert years == [(2100,)], table
