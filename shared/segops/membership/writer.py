"""Writing membership: stage a compute's results, write each segment's diff, publish with one commit row.

Used only by `segops.compute`; see `segops.membership.store` for the table design. Steps of one
compute (all SQL tenant-scoped, all values bound):

1. `stage_candidates` (delta only): the users to re-evaluate, into `compute_candidates`; the pass
   then reads only their events (`candidate_source`).
2. `stage_results`: one multi-segment pass → `compute_results (stage, segment_id, user_id)`.
3. `publish` per segment: diff staged results against the latest committed membership (restricted
   to the candidates for a delta), insert the diff rows under `version`, then the commit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from segops.dsl import CompiledQuery, EventSource
from segops.dsl.identifiers import quote_identifier
from segops.membership.store import latest_snapshot
from segops.runtime import Runtime
from segops.warehouse import TenantWarehouse

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


def candidate_source(stage_id: str) -> EventSource:
    """The tenant's events of the stage's candidates only (index lookups on the events sort key)."""
    return EventSource(
        "events",
        "tenant_id = {tenant_id:UInt64} AND user_id IN (SELECT user_id FROM compute_candidates "
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


def publish(
    runtime: Runtime,
    tenant_id: int,
    segment_id: int,
    *,
    stage_id: str,
    compute_id: str,
    mode: Mode,
    version: int,
    computed_at: datetime,
) -> Publication:
    """Diff the staged results of `segment_id` against its published membership and publish the diff.

    A delta compares only its candidates (everyone else cannot have changed). Nothing becomes
    visible before the final one-row commit insert; if anything fails earlier the rows written
    under `version` are never read.
    """
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    scope = f"AND user_id IN ({CANDIDATES}) " if mode == "delta" else ""
    params = {
        "segment_id": segment_id,
        "stage_id": stage_id,
        "compute_id": compute_id,
        "version": version,
        "computed_at": computed_at,
    }
    wh.command(
        "INSERT INTO segment_memberships (tenant_id, segment_id, user_id, version, entered, compute_id, computed_at) "
        "SELECT {tenant_id:UInt64}, {segment_id:UInt64}, user_id, {version:UInt64}, is_new, {compute_id:String}, "
        "{computed_at:DateTime64(3, 'UTC')} FROM ("
        "SELECT user_id, max(is_new) AS is_new, max(is_old) AS is_old FROM ("
        "SELECT user_id, 1 AS is_new, 0 AS is_old FROM compute_results "
        "WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String} AND segment_id = {segment_id:UInt64} "
        "UNION ALL "
        "SELECT user_id, 0 AS is_new, 1 AS is_old FROM segment_memberships "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} "
        f"{scope}"
        "AND version IN (SELECT version FROM membership_commits "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64}) "
        "GROUP BY user_id HAVING argMax(entered, version) = 1"
        ") GROUP BY user_id) WHERE is_new != is_old",
        params,
    )
    counted = wh.query(
        "SELECT countIf(change = 'entered'), countIf(change = 'exited') FROM membership_changes "
        "WHERE tenant_id = {tenant_id:UInt64} AND segment_id = {segment_id:UInt64} AND version = {version:UInt64}",
        params,
    ).rows[0]
    entered, exited = int(counted[0]), int(counted[1])
    previous = latest_snapshot(runtime, tenant_id, segment_id)
    before = previous.member_count if previous else 0
    if entered == 0 and exited == 0:
        return Publication(segment_id, None, 0, 0, before)
    members = before + entered - exited
    wh.command(
        "INSERT INTO membership_commits (tenant_id, segment_id, version, compute_id, mode, computed_at, "
        "member_count, entered_count, exited_count) VALUES ({tenant_id:UInt64}, {segment_id:UInt64}, "
        "{version:UInt64}, {compute_id:String}, {mode:String}, {computed_at:DateTime64(3, 'UTC')}, "
        "{members:UInt64}, {entered:UInt64}, {exited:UInt64})",
        {**params, "mode": mode, "members": members, "entered": entered, "exited": exited},
    )
    return Publication(segment_id, version, entered, exited, members)


def changed_users(runtime: Runtime, tenant_id: int, segment_id: int, version: int) -> list[str]:
    """Users who entered or exited in the published `version` (for cache invalidation)."""
    rows = (
        TenantWarehouse(runtime.warehouse, tenant_id)
        .query(
            "SELECT user_id FROM membership_changes WHERE tenant_id = {tenant_id:UInt64} "
            "AND segment_id = {segment_id:UInt64} AND version = {version:UInt64}",
            {"segment_id": segment_id, "version": version},
        )
        .rows
    )
    return [str(r[0]) for r in rows]
