"""Writing membership: stage a compute's results, write each segment's diff, publish with one commit row.

Used only by `segops.compute`; see `segops.membership.store` for the table design. Steps of one
compute (all SQL tenant-scoped, all values bound):

1. `stage_candidates` (delta only): the users to re-evaluate, into `compute_candidates`; the pass
   then reads only their states and events (`candidate_source`).
2. `stage_results`: one multi-segment pass → `compute_results (stage, segment_id, user_id)`.
3. `publish`: diff each segment's staged results against its latest committed membership
   (restricted to the candidates for a delta), insert the diff rows under the segment's fresh
   version, then the commit rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from segops.dsl import CompiledQuery, StoredEvents
from segops.runtime import Runtime
from segops.warehouse import TenantWarehouse
from segops.warehouse.identifiers import quote_identifier

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


def stage_candidates(
    runtime: Runtime, tenant_id: int, stage_id: str, select_user_ids: str, params: Mapping[str, Any]
) -> int:
    """Insert the distinct users of `select_user_ids` (a tenant-scoped SELECT) as the stage's candidates."""
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    wh.command(
        "INSERT INTO compute_candidates (tenant_id, compute_id, user_id) "
        f"SELECT DISTINCT {{tenant_id:UInt64}}, {{stage_id:String}}, user_id FROM ({select_user_ids})",
        {**params, "stage_id": stage_id},
    )
    return int(wh.query(f"SELECT count() FROM ({CANDIDATES})", {"stage_id": stage_id}).scalar() or 0)


def candidate_source(stage_id: str) -> StoredEvents:
    """The tenant's stored events of the stage's candidates only (index lookups on each table's user key)."""
    return StoredEvents(
        "user_id IN (SELECT user_id FROM compute_candidates "
        "WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {src_stage_id:String})",
        {"src_stage_id": stage_id},
    )


def stage_results(runtime: Runtime, tenant_id: int, stage_id: str, compiled: CompiledQuery, now: datetime) -> None:
    """Run the multi-segment pass once and keep, per segment, the users it holds."""
    hits = ", ".join(
        f"({{stage_segment_{i}:UInt64}}, {quote_identifier(column)})"
        for i, column in enumerate(compiled.columns.values())
    )
    segment_params = {f"stage_segment_{i}": segment_id for i, segment_id in enumerate(compiled.columns)}
    TenantWarehouse(runtime.warehouse, tenant_id).command(
        "INSERT INTO compute_results (tenant_id, compute_id, segment_id, user_id) "
        "SELECT {tenant_id:UInt64}, {stage_id:String}, tupleElement(hit, 1), user_id "
        f"FROM ({compiled.sql}) "
        f"ARRAY JOIN arrayFilter(x -> tupleElement(x, 2) != 0, [{hits}]) AS hit",
        {**compiled.bind(now), **segment_params, "stage_id": stage_id},
    )


@dataclass(frozen=True)
class Target:
    segment_id: int
    version: int
    compute_id: str


def publish(
    runtime: Runtime, tenant_id: int, targets: Sequence[Target], *, stage_id: str, mode: Mode, computed_at: datetime
) -> list[Publication]:
    """Diff the staged results of each target segment against its published membership; publish the diffs.

    One statement writes the diff rows of every segment (a delta compares only its candidates:
    everyone else cannot have changed), one reads their counts, one multi-row insert commits them.
    Nothing becomes visible before that last insert; if anything fails earlier, rows written under
    these versions are never read. Versions are unique per tenant, so a version names its segment.
    """
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    scope = f"AND user_id IN ({CANDIDATES}) " if mode == "delta" else ""
    params: dict[str, Any] = {
        "stage_id": stage_id,
        "segments": [t.segment_id for t in targets],
        "versions": [t.version for t in targets],
        "compute_ids": [t.compute_id for t in targets],
        "computed_at": computed_at,
    }
    wh.command(
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
        "SELECT segment_id, user_id, 0 AS is_new, 1 AS is_old FROM segment_memberships "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)} "
        f"{scope}"
        "AND (segment_id, version) IN (SELECT segment_id, version FROM membership_commits "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)}) "
        "GROUP BY segment_id, user_id HAVING argMax(entered, version) = 1"
        ") GROUP BY segment_id, user_id) WHERE is_new != is_old",
        params,
    )
    counted = {
        int(segment_id): (int(entered), int(exited))
        for segment_id, entered, exited in wh.query(
            "SELECT segment_id, countIf(change = 'entered'), countIf(change = 'exited') FROM membership_changes "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)} "
            "AND version IN {versions:Array(UInt64)} GROUP BY segment_id",
            params,
        ).rows
    }
    before = {
        int(segment_id): int(count)
        for segment_id, count in wh.query(
            "SELECT segment_id, argMax(member_count, version) FROM membership_commits "
            "WHERE tenant_id = {tenant_id:UInt64} AND segment_id IN {segments:Array(UInt64)} GROUP BY segment_id",
            params,
        ).rows
    }
    publications, commits = [], []
    for t in targets:
        entered, exited = counted.get(t.segment_id, (0, 0))
        members = before.get(t.segment_id, 0) + entered - exited
        changed = entered > 0 or exited > 0
        publications.append(Publication(t.segment_id, t.version if changed else None, entered, exited, members))
        if changed:
            commits.append(
                (tenant_id, t.segment_id, t.version, t.compute_id, mode, computed_at, members, entered, exited)
            )
    runtime.warehouse.insert("membership_commits", COMMIT_COLUMNS, commits)
    return publications


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


def changed_users(runtime: Runtime, tenant_id: int, publications: Sequence[Publication]) -> list[str]:
    """Users who entered or exited any segment in these publications (for cache invalidation)."""
    versions = [p.version for p in publications if p.version is not None]
    if not versions:
        return []
    rows = (
        TenantWarehouse(runtime.warehouse, tenant_id)
        .query(
            "SELECT DISTINCT user_id FROM membership_changes WHERE tenant_id = {tenant_id:UInt64} "
            "AND segment_id IN {segments:Array(UInt64)} AND version IN {versions:Array(UInt64)}",
            {"segments": [p.segment_id for p in publications if p.version is not None], "versions": versions},
        )
        .rows
    )
    return [str(r[0]) for r in rows]
