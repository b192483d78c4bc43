"""Publishing a compute (its last step): commit each segment's diff, invalidate, notify.

Used only by `segops.compute`, which stages a pass's results in `compute_results` (and a delta's
candidates in `compute_candidates`) first; see `segops.membership.store` for the table design. All
SQL tenant-scoped, all values bound.

1. `publish`: diff each segment's staged results against its latest committed membership
   (restricted to the candidates for a delta), insert the diff rows under the segment's fresh
   version, record the changes in the outbox, then insert the commit rows.
2. `deliver`: drop the cached lookups of every user who entered or exited, publish one
   `MembershipChanged` per changed segment, then clear the outbox.

The outbox (`tenants/<t>/membership-outbox/<stage>`: the pass's changes keyed by compute id) is what
makes a committed change always reach the cache and the connectors: written before the commit, it
outlives a crash between the commit and `deliver`, and `deliver_pending` (run before every compute of
the tenant) delivers the entries whose versions were committed and drops the others. Delivery is
at least once (a crash after a publish and before the outbox is cleared repeats it); consumers
key on the compute id and membership version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from segops.bus.base import Topic
from segops.membership.lookup import invalidate_users
from segops.messages import MembershipChanged
from segops.runtime import Runtime
from segops.store import keys
from segops.warehouse import TenantWarehouse
from segops.warehouse.identifiers import quote_identifier
from segops.warehouse.limits import limited

Mode = Literal["full", "delta"]

CANDIDATES = (
    "SELECT user_id FROM compute_candidates WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String}"
)


@dataclass(frozen=True)
class Publication:
    segment_id: int
    version: int | None  # None: nothing changed, nothing committed
    entered_count: int
    exited_count: int
    member_count: int


@dataclass(frozen=True)
class Target:
    segment_id: int
    version: int
    compute_id: str
    members: int = 0  # before this compute, as last recorded: a cost hint, never a count published


class OutboxEntry(BaseModel):
    segment_id: int
    version: int
    entered_count: int
    exited_count: int


class Outbox(BaseModel):
    """One pass's committed (or about to be committed) changes, keyed by compute id, until delivered."""

    tenant_id: int
    stage_id: str
    computed_at: datetime
    changes: dict[str, OutboxEntry]


# Rows of one `user_memberships` granule (migration 0620): what a delta reads per candidate when it
# reads its candidates' previous membership by user.
USER_GRANULE_ROWS = 256


def publish(
    runtime: Runtime,
    tenant_id: int,
    targets: Sequence[Target],
    *,
    stage_id: str,
    candidates: int | None,
    computed_at: datetime,
) -> tuple[list[Publication], Outbox | None]:
    """Diff the staged results of each target segment against its published membership; publish the diffs.

    One statement writes the diff rows of every segment (a delta — `candidates` users staged, None
    for a full pass — compares only its candidates: everyone else cannot have changed), one reads
    their counts and the member counts before them, one multi-row insert commits them.
    Nothing becomes visible before that last insert; if anything fails earlier, rows written under
    these versions are never read. Versions are unique per tenant, so a version names its segment.
    Returns the publications and, when anything changed, the outbox to `deliver`.
    """
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    mode: Mode = "full" if candidates is None else "delta"
    scope = f"AND user_id IN ({CANDIDATES}) " if mode == "delta" else ""
    params: dict[str, Any] = {
        "stage_id": stage_id,
        "segments": [t.segment_id for t in targets],
        "versions": [t.version for t in targets],
        "compute_ids": [t.compute_id for t in targets],
        "computed_at": computed_at,
    }
    diff = (
        "INSERT INTO segment_memberships (tenant_id, segment_id, user_id, version, entered, compute_id, computed_at) "
        "SELECT {tenant_id:UInt64}, segment_id, user_id, "
        "transform(segment_id, {segments:Array(UInt64)}, {versions:Array(UInt64)}, toUInt64(0)), is_new, "
        "transform(segment_id, {segments:Array(UInt64)}, {compute_ids:Array(String)}, ''), "
        "{computed_at:DateTime64(3, 'UTC')} FROM ("
        "SELECT segment_id, user_id, max(is_new) AS is_new, max(is_old) AS is_old FROM ("
        "SELECT segment_id, user_id, 1 AS is_new, 0 AS is_old FROM compute_results "
        "WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String} "
        "AND segment_id IN {segments:Array(UInt64)} "
        "UNION ALL "
        f"SELECT segment_id, user_id, 0 AS is_new, 1 AS is_old FROM {quote_identifier(_previous(targets, candidates))} "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)} "
        f"{scope}"
        "AND (segment_id, version) IN (SELECT segment_id, version FROM membership_commits "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)}) "
        "GROUP BY segment_id, user_id HAVING argMax(entered, version) = 1"
        ") GROUP BY segment_id, user_id) WHERE is_new != is_old"
    )
    wh.command(limited(diff, runtime.settings, runtime.settings.compute_max_execution_seconds), params)
    # One read for every segment's counts: entered/exited from the diff just written (a range of
    # `membership_changes` by segment and version) and the member count before it, which the
    # segment's latest commit row carries (maintained from each diff, never a count of members).
    counted = {
        int(segment_id): (int(entered), int(exited), int(before))
        for segment_id, entered, exited, before in wh.query(
            "SELECT segment_id, sum(entered), sum(exited), sum(before) FROM ("
            "SELECT segment_id, countIf(change = 'entered') AS entered, countIf(change = 'exited') AS exited, "
            "toUInt64(0) AS before FROM membership_changes "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)} "
            "AND version IN {versions:Array(UInt64)} GROUP BY segment_id "
            "UNION ALL "
            "SELECT segment_id, 0, 0, argMax(member_count, version) FROM membership_commits "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)} GROUP BY segment_id"
            ") GROUP BY segment_id",
            params,
        ).rows
    }
    publications, commits = [], []
    for t in targets:
        entered, exited, before = counted.get(t.segment_id, (0, 0, 0))
        members = before + entered - exited
        changed = entered > 0 or exited > 0
        publications.append(Publication(t.segment_id, t.version if changed else None, entered, exited, members))
        if changed:
            commits.append(
                (tenant_id, t.segment_id, t.version, t.compute_id, mode, computed_at, members, entered, exited)
            )
    if not commits:
        return publications, None
    outbox = Outbox(
        tenant_id=tenant_id,
        stage_id=stage_id,
        computed_at=computed_at,
        changes={
            t.compute_id: OutboxEntry(
                segment_id=p.segment_id, version=p.version, entered_count=p.entered_count, exited_count=p.exited_count
            )
            for t, p in zip(targets, publications, strict=True)
            if p.version is not None
        },
    )
    runtime.documents.create(keys.membership_outbox_key(tenant_id, stage_id), outbox)
    runtime.warehouse.insert("membership_commits", COMMIT_COLUMNS, commits)
    return publications, outbox


def _previous(targets: Sequence[Target], candidates: int | None) -> str:
    """Where the diff reads the previous membership: by segment, unless a delta's candidates are
    cheaper to read by user. `segment_memberships` (key segment, user) reads every 8,192-row granule
    holding a candidate — with ~1,000 scattered candidates, all of a large segment; `user_memberships`
    (key user, segment, 256-row granules) about one granule per candidate, whatever the segments'
    sizes. Both hold the same rows (a view copies each diff): the choice changes the cost, never the
    diff."""
    if candidates is not None and sum(t.members for t in targets) > USER_GRANULE_ROWS * candidates:
        return "user_memberships"
    return "segment_memberships"


COMMIT_COLUMNS = (
    "tenant_id",
    "segment_id",
    "version",
    "compute_id",
    "mode",
    "computed_at",
    "member_count",
    "entered_count",
    "exited_count",
)


def deliver(runtime: Runtime, outbox: Outbox) -> set[int]:
    """Invalidate the changed users' cached lookups, tell the connectors, clear the outbox; the segments delivered."""
    tenant_id = outbox.tenant_id
    entries = list(outbox.changes.items())
    invalidate_users(runtime, tenant_id, _changed_users(runtime, tenant_id, [e for _, e in entries]))
    for compute_id, entry in entries:
        message = MembershipChanged(
            tenant_id=tenant_id,
            segment_id=entry.segment_id,
            compute_id=compute_id,
            computed_at=outbox.computed_at,
            entered_count=entry.entered_count,
            exited_count=entry.exited_count,
        )
        runtime.bus.publish(
            Topic.MEMBERSHIP_CHANGES,
            message.model_dump_json().encode(),
            {"tenant_id": str(tenant_id), "segment_id": str(entry.segment_id)},
        )
    runtime.documents.delete(keys.membership_outbox_key(tenant_id, outbox.stage_id))
    return {e.segment_id for _, e in entries}


def deliver_pending(runtime: Runtime, tenant_id: int) -> set[int]:
    """Deliver what an interrupted compute committed and never delivered; the segments delivered.

    An outbox whose commit never landed (the compute failed before it) is dropped: nothing of it
    was ever visible.
    """
    delivered: set[int] = set()
    for outbox in runtime.documents.list(keys.membership_outbox_prefix(tenant_id), Outbox):
        versions = [e.version for e in outbox.changes.values()]
        committed = {
            int(row[0])
            for row in TenantWarehouse(runtime.warehouse, tenant_id)
            .query(
                "SELECT version FROM membership_commits WHERE tenant_id = {tenant_id:UInt64} "
                "AND version IN {versions:Array(UInt64)}",
                {"versions": versions},
            )
            .rows
        }
        changes = {c: e for c, e in outbox.changes.items() if e.version in committed}
        if changes:
            delivered |= deliver(runtime, outbox.model_copy(update={"changes": changes}))
        else:
            runtime.documents.delete(keys.membership_outbox_key(tenant_id, outbox.stage_id))
    return delivered


def _changed_users(runtime: Runtime, tenant_id: int, entries: Sequence[OutboxEntry]) -> list[str]:
    """Users who entered or exited any segment in these changes (for cache invalidation)."""
    if not entries:
        return []
    rows = (
        TenantWarehouse(runtime.warehouse, tenant_id)
        .query(
            "SELECT DISTINCT user_id FROM membership_changes WHERE tenant_id = {tenant_id:UInt64} "
            "AND segment_id IN {segments:Array(UInt64)} AND version IN {versions:Array(UInt64)}",
            {"segments": [e.segment_id for e in entries], "versions": [e.version for e in entries]},
        )
        .rows
    )
    return [str(r[0]) for r in rows]


def compact(runtime: Runtime, tenant_id: int, before: datetime) -> None:
    """Fold the change log of every segment up to its last version committed before `before`.

    Up to that version H, each (segment, user) keeps only its latest committed row, and only if it
    is an entry; superseded rows, exits (not being a member is the default) and rows of computes
    that never committed are deleted, and so are the diffs (`membership_changes`) up to H and the
    commit rows before H that no kept row carries (a kept row is read only while its commit row
    exists; H's own row holds the member count the next compute starts from). Every snapshot from
    H on reads exactly as before; older ones — superseded at least as long ago as `before` — are no
    longer readable. So the log's size, commits included, follows the members and the changes since
    `before`, not the number of computes. Safe beside a running compute: the rows it reads (latest
    committed per user, the latest commit) are the rows kept.
    """
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    horizons = wh.query(
        "SELECT segment_id, max(version) FROM membership_commits "
        "WHERE tenant_id = {tenant_id:UInt64} AND committed_at < {before:DateTime64(3, 'UTC')} GROUP BY segment_id",
        {"before": before},
    ).rows
    if not horizons:
        return
    params = {"segments": [int(s) for s, _ in horizons], "horizons": [int(h) for _, h in horizons]}
    horizon = "transform(segment_id, {segments:Array(UInt64)}, {horizons:Array(UInt64)}, toUInt64(0))"
    upto = f"version <= {horizon}"
    kept = (
        "SELECT segment_id, user_id, max(version) FROM segment_memberships "
        f"WHERE tenant_id = {{tenant_id:UInt64}} AND segment_id IN {{segments:Array(UInt64)}} AND {upto} "
        "AND (segment_id, version) IN (SELECT segment_id, version FROM membership_commits "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)}) "
        "GROUP BY segment_id, user_id HAVING argMax(entered, version) = 1"
    )
    for table in ("user_memberships", "segment_memberships"):  # the copy first: `kept` reads the original
        wh.command(
            f"DELETE FROM {quote_identifier(table)} WHERE tenant_id = {{tenant_id:UInt64}} "
            f"AND segment_id IN {{segments:Array(UInt64)}} AND {upto} "
            f"AND (segment_id, user_id, version) NOT IN ({kept})",
            params,
        )
    wh.command(
        "DELETE FROM membership_changes WHERE tenant_id = {tenant_id:UInt64} "
        f"AND segment_id IN {{segments:Array(UInt64)}} AND {upto}",
        params,
    )
    wh.command(  # after the rows: which commits are still carried is read from the compacted log
        "DELETE FROM membership_commits WHERE tenant_id = {tenant_id:UInt64} "
        f"AND segment_id IN {{segments:Array(UInt64)}} AND version < {horizon} "
        "AND (segment_id, version) NOT IN (SELECT DISTINCT segment_id, version FROM segment_memberships "
        f"WHERE tenant_id = {{tenant_id:UInt64}} AND segment_id IN {{segments:Array(UInt64)}} AND {upto})",
        params,
    )
