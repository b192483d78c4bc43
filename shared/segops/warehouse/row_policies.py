"""Database-level tenant isolation on a ClickHouse server: one row policy per tenant table.

Each policy lets the application's ClickHouse user read only the rows of the tenant named by the
per-query custom setting `SQL_segops_tenant`, which `TenantWarehouse` sets from the tenant it is bound
to. A query without the setting reads tenant 0, which does not exist: it sees no rows. So a query
builder that forgot its `tenant_id` filter still cannot read another tenant's rows.

Inserts are not filtered by row policies (the writers are cross-tenant by design and insert rows
they built themselves). Policies are access management: an administrator applies them, the
application user never holds `CREATE ROW POLICY`:

    python -m segops.warehouse.row_policies --user segops_app | clickhouse-client --multiquery ...

chDB has no access control (no row policies, no custom settings): the embedded backend relies on the
application check alone (docs/deploy.md, docs/security.md).
"""

from __future__ import annotations

import argparse
import re

from segops.config import get_settings
from segops.runtime import build_warehouse
from segops.warehouse.base import TENANT_SETTING, Warehouse

POLICY = "segops_tenant_isolation"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def tenant_tables(warehouse: Warehouse) -> list[str]:
    """Every table of the database with a `tenant_id` column (views read through them)."""
    found = warehouse.query(
        "SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'tenant_id' "
        "AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT IN ('View', 'MaterializedView')) ORDER BY table"
    )
    return [str(row[0]) for row in found.rows]


def policy_statements(database: str, tables: list[str], user: str) -> list[str]:
    """`CREATE ROW POLICY` statements binding `user` to the tenant of `SQL_segops_tenant`."""
    for name in (database, user, *tables):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"unsafe identifier {name!r}")
    condition = f"tenant_id = toUInt64OrZero(getSettingOrDefault('{TENANT_SETTING}', ''))"
    return [
        f"CREATE ROW POLICY OR REPLACE {POLICY} ON `{database}`.`{table}` FOR SELECT USING {condition} TO `{user}`"
        for table in tables
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the tenant row policies for the configured database.")
    parser.add_argument("--user", required=True, help="the application's ClickHouse user (SEGOPS_CLICKHOUSE_USER)")
    args = parser.parse_args()
    settings = get_settings()
    warehouse = build_warehouse(settings)
    try:
        for statement in policy_statements(warehouse.database, tenant_tables(warehouse), args.user):
            print(statement + ";")
    finally:
        warehouse.close()


if __name__ == "__main__":
    main()
