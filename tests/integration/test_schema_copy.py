"""The test stacks' copy of the migrated schema (`tests/support/schema.py`) is the schema the
migrations build: every table and view, their settings, projections and TTLs, and the recorded
versions, so a test on a copy tests what `make dev` and production run."""

from __future__ import annotations

import uuid

from segops.config import Settings
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import MigrationParameters, migrate

from tests.support.schema import copy_migrated_schema, schema_statements


def _schema(warehouse: ChdbWarehouse) -> list[str]:
    return [s.replace(f"{warehouse.database}.", "DB.") for s in schema_statements(warehouse)]


def _versions(warehouse: ChdbWarehouse) -> list[tuple[int, str]]:
    rows = warehouse.query("SELECT version, name FROM schema_migrations FINAL ORDER BY version").rows
    return [(int(v), str(n)) for v, n in rows]


def _migrated(settings: Settings) -> ChdbWarehouse:
    fresh = ChdbWarehouse(settings.chdb_dir, f"t_{uuid.uuid4().hex[:12]}")
    migrate(fresh, parameters=MigrationParameters.of(settings))
    return fresh


def test_a_copy_is_the_schema_the_migrations_build(settings: Settings) -> None:
    # GIVEN a database migrated from nothing, and the stacks' copy
    fresh = _migrated(settings)
    copy_migrated_schema(settings)
    copy = ChdbWarehouse(settings.chdb_dir, settings.clickhouse_database)
    # THEN the same tables and views, statement for statement, and the same versions recorded
    assert len(_schema(fresh)) > 20
    assert _schema(copy) == _schema(fresh)
    assert _versions(copy) == _versions(fresh)
    # AND migrating the copy has nothing left to apply
    assert migrate(copy, parameters=MigrationParameters.of(settings)) == []


def test_copies_follow_the_migration_parameters(settings: Settings) -> None:
    # GIVEN a retention other than the default   WHEN a stack's database is copied
    settings.usage_retention_days = 7
    copy_migrated_schema(settings)
    copy = ChdbWarehouse(settings.chdb_dir, settings.clickhouse_database)
    # THEN it is the schema migrated with that retention, not the default's
    assert _schema(copy) == _schema(_migrated(settings))
    assert any("toIntervalDay(7)" in s for s in _schema(copy))
