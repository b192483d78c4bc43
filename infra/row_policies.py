"""`python -m infra.row_policies --user <application user>`: print the tenant row policies
(`segops.warehouse.row_policies`) for the configured ClickHouse database, one statement per tenant
table, for an administrative user to apply after the migrations (docs/deploy.md). It reads the same
SEGOPS_* settings as the functions and changes nothing itself.
"""

from __future__ import annotations

import argparse

from segops.config import Settings
from segops.runtime import build_warehouse
from segops.warehouse.row_policies import policy_statements, tenant_tables


def statements(settings: Settings, user: str) -> list[str]:
    warehouse = build_warehouse(settings)
    try:
        return policy_statements(warehouse.database, tenant_tables(warehouse), user)
    finally:
        warehouse.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Print the tenant row policies for the configured database.")
    parser.add_argument("--user", required=True, help="the application's ClickHouse user (SEGOPS_CLICKHOUSE_USER)")
    args = parser.parse_args()
    for statement in statements(Settings(), args.user):
        print(statement + ";")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
