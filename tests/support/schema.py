"""Stacks on the embedded warehouse start from a copy of one migrated database of the test process.

Migrating a fresh database runs the ~75 statements of every migration in turn, ~0.65 s on chDB (each
statement costs it a few milliseconds however small). A copy creates the ~25 tables and views that
they leave, from the engine's own `create_table_query` of a database migrated once per process (and
per set of migration parameters), and copies its `schema_migrations`: ~0.25 s. `LocalStack` then
migrates as always and finds every version recorded. Tests of the migrations themselves, and every
stack a test builds itself, still migrate from nothing; `tests/integration/test_schema_copy.py` checks
that a copy is the schema the migrations build.
"""

from __future__ import annotations

import threading
import uuid

from segops.config import Settings
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.identifiers import quote_identifier
from segops.warehouse.migrations import MigrationParameters, migrate

_VIEW_ENGINES = ("View", "MaterializedView")

_lock = threading.Lock()
# (chDB path, parameters) -> the template database's name and the statements that rebuild it.
_templates: dict[tuple[str, MigrationParameters], tuple[str, list[str]]] = {}


def schema_statements(warehouse: ChdbWarehouse) -> list[str]:
    """`CREATE` statements of every table and view of the warehouse's database, as the engine keeps
    them (database-qualified), the tables before the views that read or fill them."""
    rows = warehouse.query(
        "SELECT engine, create_table_query FROM system.tables WHERE database = {database:String} ORDER BY name",
        {"database": warehouse.database},
    ).rows
    tables = [str(query) for engine, query in rows if engine not in _VIEW_ENGINES]
    views = [str(query) for engine, query in rows if engine == "View"]
    materialized = [str(query) for engine, query in rows if engine == "MaterializedView"]
    return tables + views + materialized


def _template(settings: Settings) -> tuple[str, list[str]]:
    parameters = MigrationParameters.of(settings)
    key = (str(settings.chdb_dir.resolve()), parameters)
    with _lock:
        if key not in _templates:
            template = ChdbWarehouse(settings.chdb_dir, f"template_{uuid.uuid4().hex[:12]}")
            migrate(template, parameters=parameters)
            _templates[key] = (template.database, schema_statements(template))
        return _templates[key]


def copy_migrated_schema(settings: Settings) -> None:
    """Create `settings.clickhouse_database` as a copy of the migrated template (embedded warehouse
    only; any other backend is left to `LocalStack` to migrate)."""
    if settings.warehouse != "chdb":
        return
    name, statements = _template(settings)
    target = ChdbWarehouse(settings.chdb_dir, settings.clickhouse_database)
    # Template names are unique (`template_<hex>`), so the qualified prefix occurs only as a name.
    for statement in statements:
        target.command(statement.replace(f"{name}.", f"{quote_identifier(target.database)}."))
    source = f"{quote_identifier(name)}.schema_migrations"
    target.command(f"INSERT INTO schema_migrations SELECT * FROM {source}")  # noqa: S608 (quoted identifier)
