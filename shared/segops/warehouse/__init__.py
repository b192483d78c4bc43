"""ClickHouse access: one Protocol, chDB (embedded) and clickhouse-connect (server) backends."""

from segops.warehouse.base import QueryResult, TenantWarehouse, Warehouse

__all__ = ["QueryResult", "TenantWarehouse", "Warehouse"]
