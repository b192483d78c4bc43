"""`python -m infra.migrate`: the deployment step that creates and upgrades the warehouse schema."""

from __future__ import annotations

from segops.config import Settings
from segops.runtime import build_warehouse
from segops.warehouse.migrations import available_migrations

from infra import migrate


def test_applies_every_migration_once(settings: Settings) -> None:
    # GIVEN an empty warehouse database WHEN the deployment step runs twice
    first = migrate.run(settings)
    second = migrate.run(settings)
    # THEN every migration is applied by the first run only, and the tables exist
    assert first == [name for _, name, _ in available_migrations()]
    assert second == []
    tables = build_warehouse(settings).query(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": settings.clickhouse_database}
    )
    assert {"events", "schema_migrations"} <= {row[0] for row in tables.rows}
