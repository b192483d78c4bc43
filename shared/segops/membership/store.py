"""Reading segment membership (tables in migration 0200).

Design: membership is a versioned change log. Each compute that changes a segment writes one row
per user who entered or exited, under a fresh version, into `segment_memberships` (by segment,
user) — materialised views copy the rows into `user_memberships` (by user) and
`membership_changes` (by compute). The compute then inserts ONE row into `membership_commits`;
only committed versions are ever read, so:

- readers never see a half-written compute, and a failed compute (no commit row) leaves the
  previous membership exactly as it was;
- a snapshot is a committed version `V`: membership at `V` is, per user, the latest committed
  change with version <= V. Snapshots stay readable (a cursor pinned to one is stable while
  newer computes land); history is kept, so are they;
- "members of S" is a range scan of `(tenant_id, segment_id)` in user order, "segments of U" a
  range scan of `(tenant_id, user_id)`, "diff of compute C" a range of `(tenant_id, segment_id,
  version)`: index lookups, never table scans.

Public reads (all tenant-scoped; `snapshot=None` means the latest committed one):
`latest_snapshot`, `members_page`, `member_count`, `iter_members`, `changes`, `segments_of_user`
(connectors read them through `segops.connectors.warehouse_feed`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from segops.warehouse import TenantWarehouse, Warehouse

_COMMITTED = (
    "SELECT version FROM membership_commits "
    "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} AND version <= {snapshot:UInt64}"
)


@dataclass(frozen=True)
class Snapshot:
    """One published compute of a segment."""

    version: int
    compute_id: str
    mode: str
    computed_at: datetime
    member_count: int
    entered_count: int
    exited_count: int


@dataclass(frozen=True)
class Member:
    user_id: str
    computed_at: datetime  # when the compute that made them a member ran (its `now`)


@dataclass(frozen=True)
class MembersPage:
    members: list[Member]
    snapshot: int
    next_after: str | None  # pass as `after_user_id` for the next page; None on the last page


@dataclass(frozen=True)
class ChangeSet:
    entered: list[str]
    exited: list[str]


def _wh(warehouse: Warehouse, tenant_id: int) -> TenantWarehouse:
    return TenantWarehouse(warehouse, tenant_id)


_SNAPSHOT_COLUMNS = "version, compute_id, mode, computed_at, member_count, entered_count, exited_count"


def _snapshot(row: tuple[object, ...]) -> Snapshot:
    version, compute_id, mode, computed_at, member_count, entered, exited = row
    assert isinstance(computed_at, datetime)
    return Snapshot(
        int(str(version)),
        str(compute_id),
        str(mode),
        computed_at,
        int(str(member_count)),
        int(str(entered)),
        int(str(exited)),
    )


def latest_snapshot(warehouse: Warehouse, tenant_id: int, segment_id: int) -> Snapshot | None:
    """The newest published compute of the segment that changed its membership, if any."""
    rows = (
        _wh(warehouse, tenant_id)
        .query(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM membership_commits "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} "
            "ORDER BY version DESC LIMIT 1",
            {"segment_id": segment_id},
        )
        .rows
    )
    return _snapshot(rows[0]) if rows else None


def snapshot_at(warehouse: Warehouse, tenant_id: int, segment_id: int, snapshot: int) -> Snapshot | None:
    """The published compute that snapshot `snapshot` reflects (newest commit at or before it)."""
    rows = (
        _wh(warehouse, tenant_id)
        .query(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM membership_commits "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} "
            "AND version <= {snapshot:UInt64} ORDER BY version DESC LIMIT 1",
            {"segment_id": segment_id, "snapshot": snapshot},
        )
        .rows
    )
    return _snapshot(rows[0]) if rows else None


def _resolve(warehouse: Warehouse, tenant_id: int, segment_id: int, snapshot: int | None) -> int:
    if snapshot is not None:
        return snapshot
    latest = latest_snapshot(warehouse, tenant_id, segment_id)
    return latest.version if latest else 0


def members_page(
    warehouse: Warehouse,
    tenant_id: int,
    segment_id: int,
    after_user_id: str | None,
    limit: int,
    snapshot: int | None = None,
) -> MembersPage:
    """Members ordered by user_id, strictly after `after_user_id`, as of `snapshot`.

    Pass the returned `snapshot` back with the next page so a compute landing mid-pagination
    does not shift the cursor.
    """
    pinned = _resolve(warehouse, tenant_id, segment_id, snapshot)
    if pinned == 0:
        return MembersPage([], 0, None)
    rows = (
        _wh(warehouse, tenant_id)
        .query(
            "SELECT user_id, argMax(computed_at, version) AS computed_at FROM segment_memberships "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} AND user_id > {after:String} "
            f"AND version IN ({_COMMITTED}) "
            "GROUP BY user_id HAVING argMax(entered, version) = 1 "
            # Aggregating in sorting-key order lets the LIMIT stop the read: a page costs its own
            # size, not the rest of the segment after the cursor.
            "ORDER BY user_id LIMIT {limit:UInt64} SETTINGS optimize_aggregation_in_order = 1",
            {"segment_id": segment_id, "snapshot": pinned, "after": after_user_id or "", "limit": limit + 1},
        )
        .rows
    )
    members = [Member(str(user_id), computed_at) for user_id, computed_at in rows[:limit]]
    next_after = members[-1].user_id if len(rows) > limit else None
    return MembersPage(members, pinned, next_after)


def member_count(warehouse: Warehouse, tenant_id: int, segment_id: int, snapshot: int | None = None) -> int:
    """Members as of `snapshot` (recorded on its commit row: no scan)."""
    found = (
        latest_snapshot(warehouse, tenant_id, segment_id)
        if snapshot is None
        else snapshot_at(warehouse, tenant_id, segment_id, snapshot)
    )
    return found.member_count if found else 0


def iter_members(
    warehouse: Warehouse, tenant_id: int, segment_id: int, snapshot: int | None = None, page_size: int = 10_000
) -> Iterator[str]:
    """Every member's user_id at one pinned snapshot (full syncs), in pages."""
    pinned = _resolve(warehouse, tenant_id, segment_id, snapshot)
    after: str | None = None
    while True:
        page = members_page(warehouse, tenant_id, segment_id, after, page_size, pinned)
        yield from (m.user_id for m in page.members)
        if page.next_after is None:
            return
        after = page.next_after


def changes(warehouse: Warehouse, tenant_id: int, segment_id: int, compute_id: str) -> ChangeSet:
    """Who entered and who exited in one published compute (empty if it changed nothing or never published)."""
    rows = (
        _wh(warehouse, tenant_id)
        .query(
            "SELECT user_id, toString(change) FROM membership_changes "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} AND version IN ("
            "SELECT version FROM membership_commits WHERE tenant_id = {tenant_id:UInt64} "
            "AND segment_id = {segment_id:UInt64} AND compute_id = {compute_id:String}) "
            "ORDER BY user_id",
            {"segment_id": segment_id, "compute_id": compute_id},
        )
        .rows
    )
    return ChangeSet(
        [str(u) for u, change in rows if change == "entered"], [str(u) for u, change in rows if change == "exited"]
    )


def segments_of_user(warehouse: Warehouse, tenant_id: int, user_id: str) -> list[int]:
    """Ids of the segments the user is a member of (latest committed state), by index lookup.

    The user's committed change rows are few (one per segment per change), so the latest one per
    segment is picked here rather than by a GROUP BY in the warehouse.
    """
    rows = (
        _wh(warehouse, tenant_id)
        .query(
            "SELECT segment_id, version, entered FROM user_memberships "
            "WHERE tenant_id = {tenant_id:UInt64} AND user_id = {user_id:String} AND (segment_id, version) IN ("
            "SELECT segment_id, version FROM membership_commits WHERE tenant_id = {tenant_id:UInt64})",
            {"user_id": user_id},
        )
        .rows
    )
    latest: dict[int, tuple[int, int]] = {}
    for segment_id, version, entered in rows:
        seen = latest.get(int(segment_id))
        if seen is None or int(version) > seen[0]:
            latest[int(segment_id)] = (int(version), int(entered))
    return sorted(segment_id for segment_id, (_, entered) in latest.items() if entered)


def members_query(segment_id: int, snapshot: int) -> tuple[str, dict[str, object]]:
    """`(sql, params)` selecting `user_id, computed_at` of every member at `snapshot`, by user_id,
    for the warehouse to render itself (exports); run it through `TenantWarehouse`."""
    sql = (
        "SELECT user_id, argMax(computed_at, version) AS computed_at FROM segment_memberships "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} "
        f"AND version IN ({_COMMITTED}) "
        "GROUP BY user_id HAVING argMax(entered, version) = 1 ORDER BY user_id"
    )
    return sql, {"segment_id": segment_id, "snapshot": snapshot}
