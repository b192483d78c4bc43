"""Per-connector ledger of users that may be on the platform (migration 0400). It lets a full sync
remove users who left the segment while a removal failed or while the connector was inactive."""

from __future__ import annotations

import time
from collections.abc import Iterable

from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

_PRESENT_SQL = """
SELECT user_id FROM connector_ledger FINAL
WHERE tenant_id = {tenant_id:UInt64} AND connector_id = {connector_id:UInt64} AND present = 1
"""


class ConnectorLedger:
    def __init__(self, runtime: Runtime, tenant_id: int, connector_id: int) -> None:
        self.runtime = runtime
        self.warehouse = TenantWarehouse(runtime.warehouse, tenant_id)
        self.tenant_id = tenant_id
        self.connector_id = connector_id

    def mark(self, user_ids: Iterable[str], present: bool) -> None:
        # A version that only grows, not an instant: read from the real clock even when tests freeze
        # `clock`, else a mark and an unmark in the same frozen instant would tie.
        version = time.time_ns()
        rows = [(self.tenant_id, self.connector_id, u, int(present), version) for u in user_ids]
        if rows:
            self.runtime.warehouse.insert(
                "connector_ledger", ["tenant_id", "connector_id", "user_id", "present", "version"], rows
            )

    def present(self) -> set[str]:
        rows = self.warehouse.query(_PRESENT_SQL, {"connector_id": self.connector_id}).rows
        return {str(row[0]) for row in rows}

    def forget(self) -> None:
        """A deleted connector leaves nothing behind."""
        self.warehouse.command(
            "DELETE FROM connector_ledger "
            "WHERE tenant_id = {tenant_id:UInt64} AND connector_id = {connector_id:UInt64}",
            {"connector_id": self.connector_id},
        )
