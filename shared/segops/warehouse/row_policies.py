"""Database-level tenant isolation on a ClickHouse server: one row policy per tenant table.

Each policy lets the application's ClickHouse user read only the rows of the tenant named by the
per-query custom setting `SQL_segops_tenant`, which `TenantWarehouse` sets from the tenant it is bound
to. A query without the setting reads tenant 0, which does not exist: it sees no rows. So a query
builder that forgot its `tenant_id` filter still cannot read another tenant's rows.

Inserts are not filtered by row policies (the writers are cross-tenant by design and insert rows
they built themselves). Policies are access management: an administrator applies them, the
application user never holds `CREATE ROW POLICY` (`python -m infra.row_policies`, docs/deploy.md).

chDB has no access control (no row policies, no custom settings): the embedded backend relies on the
application check alone (docs/deploy.md, docs/security.md).
"""

from __future__ import annotations

from segops.warehouse.base import TENANT_SETTING, Warehouse
from segops.warehouse.identifiers import quote_identifier

POLICY = "segops_tenant_isolation"


def tenant_tables(warehouse: Warehouse) -> list[str]:
    """Every table of the database with a `tenant_id` column (views read through them)."""
    found = warehouse.query(
        "SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'tenant_id' "
        "AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT IN ('View', 'MaterializedView')) ORDER BY table"
    )
    return [str(row[0]) for row in found.rows]


def policy_statements(database: str, tables: list[str], user: str) -> list[str]:
    """`CREATE ROW POLICY` statements binding `user` to the tenant of `SQL_segops_tenant`; names go
    through the identifier allow-list (`ValueError` otherwise)."""
    condition = f"tenant_id = toUInt64OrZero(getSettingOrDefault('{TENANT_SETTING}', ''))"
    scope = quote_identifier(database)
    grantee = quote_identifier(user)
    return [
        f"CREATE ROW POLICY OR REPLACE {quote_identifier(POLICY)} ON {scope}.{quote_identifier(table)} "
        f"FOR SELECT USING {condition} TO {grantee}"
        for table in tables
    ]
