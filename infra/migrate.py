"""`python -m infra.migrate`: apply the warehouse migrations to the production ClickHouse.

Deployed functions never migrate at cold start (many instances would race, and the application
user should not hold DDL rights), so a deployment runs this once, with an administrative
ClickHouse user, before `terraform apply` rolls out code that needs the new schema. It reads the
same SEGOPS_* settings as the functions (docs/deploy.md).
"""

from __future__ import annotations

import sys

from segops.config import Settings
from segops.runtime import build_warehouse
from segops.warehouse.migrations import MigrationParameters, migrate


def run(settings: Settings) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date)."""
    warehouse = build_warehouse(settings)
    try:
        return migrate(warehouse, parameters=MigrationParameters.of(settings))
    finally:
        warehouse.close()


def main() -> int:
    settings = Settings()
    applied = run(settings)
    target = settings.clickhouse_url if settings.warehouse == "clickhouse" else str(settings.chdb_dir)
    print(f"{len(applied)} migration(s) applied to {settings.clickhouse_database} at {target}", file=sys.stderr)
    for name in applied:
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
