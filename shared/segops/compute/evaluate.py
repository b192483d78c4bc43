"""Step 2 of a compute: evaluate a pass's definitions and stage who is in each segment.

Results go to `compute_results (stage, segment_id, user_id)`, never to membership: publishing them
is the membership writer's step. A delta first stages its candidates (`compute_candidates`) and
the pass then reads only their states and events. The SQL itself is `segops.dsl`'s (`compile_segments`); this
module only feeds it and stores what it selects, in as many statements as the warehouse's bounds
need, all staged under the same stage so the publication stays one commit:

- by segments, when one statement would exceed `compute_max_query_bytes` (ClickHouse refuses a
  query text over `max_query_size`) or bind more than `MAX_STATEMENT_PARAMS` parameters (a
  ClickHouse server refuses an HTTP request of more than `http_max_fields`, 1,000 by default, and
  each bound parameter is one) or `MAX_STATEMENT_PARAM_BYTES` of them (a query too long for a form
  field sends its parameters in the URL, which a server takes up to `http_max_uri_size`, 1 MiB, once
  URL-encoded): the segments are halved until each statement fits;
- by users, when the pass's per-user states would not fit in memory without spilling
  (`segops.warehouse.limits.user_parts`): one statement per range of `user_id`, so a statement's
  memory follows the settings however large the tenant. Each user is in exactly one range, so the
  parts' results are the whole pass's; ranges (not hashes) because every table the pass reads is
  ordered by user within a tenant (or a day), so a part reads only its own granules. The split
  points are quantiles of a sample of the users (`segops.warehouse.limits.split_points`), which also
  estimates their number; a tenant whose state rows alone fit in one part is never sampled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from segops.compute.plan import Pass, delta_candidates
from segops.dsl import CompiledQuery, SegmentDefinition, StoredEvents, compile_segments, tenant_events
from segops.dsl.sources import split_by_users
from segops.lookalike import service as lookalike_service
from segops.lookalike.models import LookalikeDefinition
from segops.membership.writer import CANDIDATES
from segops.runtime import Runtime
from segops.warehouse import TenantWarehouse
from segops.warehouse.identifiers import quote_identifier
from segops.warehouse.limits import limited
from segops.warehouse.params import format_params

# Bound parameters per statement: each is one field of the HTTP request to a ClickHouse server, which
# refuses more than `http_max_fields` (1,000) fields in all; the rest leaves room for the settings
# and the client's own fields. ~2 parameters per small segment: 500 of them would have been refused.
MAX_STATEMENT_PARAMS = 800
# Bytes of bound parameters per statement, as ClickHouse reads them: at most 3x that once URL-encoded.
MAX_STATEMENT_PARAM_BYTES = 300_000


def evaluate(runtime: Runtime, tenant_id: int, work: Pass, stage_id: str, now: datetime) -> int | None:
    """Stage the pass's results under `stage_id`; a delta's number of candidates (0: nothing can
    change, nothing staged), None for a full pass."""
    [first, *_] = work.targets
    if isinstance(first.definition, LookalikeDefinition):  # a lookalike is a pass of its own
        lookalike_service.stage_members(runtime, tenant_id, stage_id, first.segment.id, first.definition, now)
        return None
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    source = tenant_events()
    candidates: int | None = None
    if work.mode == "delta":
        select, params = delta_candidates(work.targets, now)
        candidates = _stage_candidates(runtime, tenant_id, stage_id, select, params)
        if candidates == 0:
            return 0
        source = _candidate_source(stage_id)
    definitions = [(t.segment.id, t.definition) for t in work.targets if isinstance(t.definition, SegmentDefinition)]
    groups = _groups(definitions, source, now, runtime.settings.compute_max_query_bytes)
    widest = max(compiled.aggregates for _, compiled in groups)
    ranges = split_by_users(wh, source, candidates, widest, runtime.settings)
    for group, compiled in groups:
        parts = [compiled] if len(ranges) == 1 else [_compile(group, s) for s in ranges]
        for part in parts:
            sql, params = _stage_results(part, now)
            wh.command(_bounded(runtime, sql), {**params, "stage_id": stage_id})
    return candidates


def _groups(
    definitions: list[tuple[int, SegmentDefinition]], source: StoredEvents, now: datetime, max_bytes: int
) -> list[tuple[list[tuple[int, SegmentDefinition]], CompiledQuery]]:
    """The definitions in groups whose statement stays under `max_bytes`, `MAX_STATEMENT_PARAMS` and
    `MAX_STATEMENT_PARAM_BYTES` (a lone segment as it is).

    Measured without the user range a split adds (~150 bytes and two parameters, inside the margins
    between the default `max_bytes` and ClickHouse's 256 KiB, and between MAX_STATEMENT_PARAMS and
    its 1,000 fields).
    """
    compiled = _compile(definitions, source)
    if len(definitions) == 1 or _fits(*_stage_results(compiled, now), max_bytes):
        return [(definitions, compiled)]
    half = len(definitions) // 2
    return _groups(definitions[:half], source, now, max_bytes) + _groups(definitions[half:], source, now, max_bytes)


def _fits(sql: str, params: Mapping[str, Any], max_bytes: int) -> bool:
    if len(sql.encode()) > max_bytes or len(params) > MAX_STATEMENT_PARAMS:
        return False
    return sum(len(text.encode()) for text in format_params(params).values()) <= MAX_STATEMENT_PARAM_BYTES


def _compile(definitions: list[tuple[int, SegmentDefinition]], source: StoredEvents) -> CompiledQuery:
    # Every user of the pass: staging keeps only each user's true segment columns (`_stage_results`).
    return compile_segments(definitions, source, members_only=False)


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
    ids = ", ".join(f"{{stage_segment_{i}:UInt64}}" for i in range(len(compiled.columns)))
    hits = ", ".join(quote_identifier(column) for column in compiled.columns.values())
    segment_params = {f"stage_segment_{i}": segment_id for i, segment_id in enumerate(compiled.columns)}
    # A user in no segment has an empty array: ARRAY JOIN drops the row.
    sql = (
        "INSERT INTO compute_results (tenant_id, compute_id, segment_id, user_id) "
        "SELECT {tenant_id:UInt64}, {stage_id:String}, segment, user_id "
        f"FROM ({compiled.sql}) "
        f"ARRAY JOIN arrayFilter((segment, hit) -> hit != 0, [{ids}], [{hits}]) AS segment"
    )
    return sql, {**compiled.bind(now), **segment_params}


def _bounded(runtime: Runtime, sql: str) -> str:
    return limited(sql, runtime.settings, runtime.settings.compute_max_execution_seconds)
