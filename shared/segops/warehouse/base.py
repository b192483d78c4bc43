from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from segops.warehouse.identifiers import allowed_identifier
from segops.warehouse.tenant_filter import PLACEHOLDER, unfiltered_tables


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class Warehouse(Protocol):
    """ClickHouse SQL with server-side `{name:Type}` parameters only; values are never formatted in.

    `tenant_id` is the tenant a statement is scoped to (set by `TenantWarehouse` only). A ClickHouse
    server receives it as the `SQL_segops_tenant` setting its row policies key on
    (`segops.warehouse.row_policies`); chDB has neither custom settings nor row policies, so there the
    application check in `TenantWarehouse` holds alone.
    """

    database: str

    def query(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> QueryResult: ...

    def command(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> None: ...

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        """Insert rows as one block; `settings` are ClickHouse insert settings (e.g. `insert_deduplication_token`)."""
        ...

    def export(
        self, sql: str, params: Mapping[str, Any], fmt: str, sink: IO[bytes], tenant_id: int | None = None
    ) -> int:
        """Stream the result of `sql` rendered by ClickHouse in `fmt` into `sink`; returns bytes written."""
        ...

    def check(self) -> None: ...

    def close(self) -> None: ...


_SETTING_VALUE = re.compile(r"[A-Za-z0-9_:.\-]{0,256}")


def render_settings(settings: Mapping[str, str | int]) -> str:
    """`name='value', ...` for a SETTINGS clause; names and values are allow-listed, never escaped."""
    parts = []
    for name, value in settings.items():
        text = str(value)
        if not _SETTING_VALUE.fullmatch(text):
            raise ValueError(f"unsafe setting {name!r}")
        parts.append(f"{allowed_identifier(name)}='{text}'")
    return ", ".join(parts)


TENANT_SETTING = "SQL_segops_tenant"


class TenantWarehouse:
    """The one code path that binds the tenant filter: every read of a tenant table must filter on
    `{tenant_id:UInt64}` in its own query (`segops.warehouse.tenant_filter`), and the backend is told
    the tenant (`TENANT_SETTING`) for the database's own row policies."""

    def __init__(self, warehouse: Warehouse, tenant_id: int) -> None:
        self.warehouse = warehouse
        self.tenant_id = tenant_id

    def _bind(self, sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        if PLACEHOLDER not in sql:
            raise ValueError("tenant-scoped SQL must filter on {tenant_id:UInt64}")
        unfiltered = unfiltered_tables(sql)
        if unfiltered:
            raise ValueError(
                f"tenant-scoped SQL reads {', '.join(sorted(set(unfiltered)))} without its own "
                "`tenant_id = {tenant_id:UInt64}` filter (segops.warehouse.tenant_filter)"
            )
        bound = dict(params or {})
        if "tenant_id" in bound and bound["tenant_id"] != self.tenant_id:
            raise ValueError("tenant_id parameter is bound by the tenant scope")
        bound["tenant_id"] = self.tenant_id
        return bound

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        return self.warehouse.query(sql, self._bind(sql, params), tenant_id=self.tenant_id)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.warehouse.command(sql, self._bind(sql, params), tenant_id=self.tenant_id)

    def export(self, sql: str, params: Mapping[str, Any], fmt: str, sink: IO[bytes]) -> int:
        return self.warehouse.export(sql, self._bind(sql, params), fmt, sink, tenant_id=self.tenant_id)
