"""The membership feed over segment_compute's tables (`segops.membership.store`)."""

from __future__ import annotations

from segops.connectors.feed import MembershipSnapshot
from segops.membership import store
from segops.warehouse.base import TenantWarehouse, Warehouse

_VERSION_SQL = """
SELECT max(version) FROM membership_commits
WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} AND compute_id = {compute_id:String}
"""


class WarehouseMembershipFeed:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def changes(self, tenant_id: int, segment_id: int, compute_id: str) -> store.ChangeSet:
        return store.changes(self.warehouse, tenant_id, segment_id, compute_id)

    def version(self, tenant_id: int, segment_id: int, compute_id: str) -> int | None:
        rows = (
            TenantWarehouse(self.warehouse, tenant_id)
            .query(_VERSION_SQL, {"segment_id": segment_id, "compute_id": compute_id})
            .rows
        )
        found = rows[0][0] if rows else None
        return int(found) if found else None

    def snapshot(self, tenant_id: int, segment_id: int) -> MembershipSnapshot:
        """Members pinned to the latest published compute, with that compute's `computed_at`."""
        latest = store.latest_snapshot(self.warehouse, tenant_id, segment_id)
        if latest is None:
            return MembershipSnapshot(None, None, iter(()))
        members = store.iter_members(self.warehouse, tenant_id, segment_id, snapshot=latest.version)
        return MembershipSnapshot(latest.version, latest.computed_at, members)
