"""Step 2 of a compute: evaluate a pass's definitions and stage who is in each segment.

Results go to `compute_results (stage, segment_id, user_id)`, never to membership: publishing them
is the membership writer's step. A delta first stages its candidates (`compute_candidates`) and
the pass then reads only their states and events. The SQL itself is `segops.dsl`'s (`compile_segments`); this
module only feeds it and stores what it selects — in several statements when one would exceed
`compute_max_query_bytes` (ClickHouse refuses a query text over `max_query_size`): the segments
are halved until each statement fits, all staged under the same stage, so the publication stays
one commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from segops.compute.plan import Pass, delta_candidates
from segops.dsl import CompiledQuery, SegmentDefinition, StoredEvents, compile_segments
from segops.lookalike import service as lookalike_service
from segops.lookalike.models import LookalikeDefinition
from segops.membership.writer import CANDIDATES
from segops.runtime import Runtime
from segops.warehouse import TenantWarehouse
from segops.warehouse.identifiers import quote_identifier
from segops.warehouse.limits import limited


def evaluate(runtime: Runtime, tenant_id: int, work: Pass, stage_id: str, now: datetime) -> int | None:
    """Stage the pass's results under `stage_id`; a delta's number of candidates (0: nothing can
    change, nothing staged), None for a full pass."""
    [first, *_] = work.targets
    if isinstance(first.definition, LookalikeDefinition):  # a lookalike is a pass of its own
        lookalike_service.stage_members(runtime, tenant_id, stage_id, first.segment.id, first.definition, now)
        return None
    source, candidates = None, None
    if work.mode == "delta":
        select, params = delta_candidates(work.targets, now)
        candidates = _stage_candidates(runtime, tenant_id, stage_id, select, params)
        if candidates == 0:
            return 0
        source = _candidate_source(stage_id)
    definitions = [(t.segment.id, t.definition) for t in work.targets if isinstance(t.definition, SegmentDefinition)]
    for sql, params in _statements(definitions, source, now, runtime.settings.compute_max_query_bytes):
        TenantWarehouse(runtime.warehouse, tenant_id).command(_bounded(runtime, sql), {**params, "stage_id": stage_id})
    return candidates


def _statements(
    definitions: list[tuple[int, SegmentDefinition]], source: StoredEvents | None, now: datetime, max_bytes: int
) -> list[tuple[str, dict[str, Any]]]:
    """Statements staging the definitions' results, each under `max_bytes` (a lone segment as it is)."""
    statement = _stage_results(compile_segments(definitions, source), now)
    if len(definitions) == 1 or len(statement[0].encode()) <= max_bytes:
        return [statement]
    half = len(definitions) // 2
    return _statements(definitions[:half], source, now, max_bytes) + _statements(
        definitions[half:], source, now, max_bytes
    )


def _stage_candidates(
    runtime: Runtime, tenant_id: int, stage_id: str, select_user_ids: str, params: Mapping[str, Any]
) -> int:
    """Insert the distinct users of `select_user_ids` (a tenant-scoped SELECT) as the stage's candidates."""
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    wh.command(
        _bounded(
            runtime,
            "INSERT INTO compute_candidates (tenant_id, compute_id, user_id) "
            f"SELECT DISTINCT {{tenant_id:UInt64}}, {{stage_id:String}}, user_id FROM ({select_user_ids})",
        ),
        {**params, "stage_id": stage_id},
    )
    return int(wh.query(f"SELECT count() FROM ({CANDIDATES})", {"stage_id": stage_id}).scalar() or 0)


def _candidate_source(stage_id: str) -> StoredEvents:
    """The tenant's stored events of the stage's candidates only (index lookups on each table's user key)."""
    return StoredEvents(
        "user_id IN (SELECT user_id FROM compute_candidates "
        "WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {src_stage_id:String})",
        {"src_stage_id": stage_id},
    )


def _stage_results(compiled: CompiledQuery, now: datetime) -> tuple[str, dict[str, Any]]:
    """The multi-segment pass at `now`, keeping per segment the users it holds (param `stage_id` to add)."""
    hits = ", ".join(
        f"({{stage_segment_{i}:UInt64}}, {quote_identifier(column)})"
        for i, column in enumerate(compiled.columns.values())
    )
    segment_params = {f"stage_segment_{i}": segment_id for i, segment_id in enumerate(compiled.columns)}
    sql = (
        "INSERT INTO compute_results (tenant_id, compute_id, segment_id, user_id) "
        "SELECT {tenant_id:UInt64}, {stage_id:String}, tupleElement(hit, 1), user_id "
        f"FROM ({compiled.sql}) "
        f"ARRAY JOIN arrayFilter(x -> tupleElement(x, 2) != 0, [{hits}]) AS hit"
    )
    return sql, {**compiled.bind(now), **segment_params}


def _bounded(runtime: Runtime, sql: str) -> str:
    return limited(sql, runtime.settings, runtime.settings.compute_max_execution_seconds)
