"""Full and delta computes of a tenant's segments, published atomically.

Delta contract (docs/design.md §6): after a delta at `now`, membership equals a full compute at `now`.
A user's result can differ between the last compute's `now` (L) and `now` (N) only if
- events of theirs reached the warehouse since the last compute started (arrivals), or
- one of their events has `occurred_at` in (L, N] (it did not exist at L, it does at N), or
- one of their events of a windowed/recency event type has `occurred_at` in [L - W, N - W] for a
  window W in use (it left a window, or their recency crossed W).
Everyone else's aggregates and booleans are the same at N as at L, so only those candidates are
re-evaluated (closed ranges: a superset is harmless, a miss is not).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from segops import clock
from segops.bus.base import Topic
from segops.dsl import (
    EventCount,
    Monetary,
    Recency,
    SegmentDefinition,
    compile_segments,
    conditions,
    parse_definition,
    window_milliseconds,
)
from segops.errors import SegOpsError, tenant_message
from segops.lookalike import service as lookalike_service
from segops.lookalike.models import LookalikeDefinition, checked_seed, parse_lookalike
from segops.membership import writer
from segops.membership.lookup import active_segments, invalidate_users
from segops.messages import ComputeRequested, MembershipChanged, SegmentComputeEnvelope
from segops.metering import units as metering
from segops.runtime import Runtime
from segops.segments.models import ComputeState, Segment
from segops.store import keys
from segops.warehouse import statistics

log = logging.getLogger("segops.compute")

Mode = Literal["full", "delta"]
# Inserts still in flight when a compute starts may land with an arrival time just before it.
ARRIVAL_MARGIN = timedelta(seconds=60)
_VERSIONS_PER_JOB = 1000


@dataclass(frozen=True)
class Request:
    segment_id: int
    mode: Mode
    compute_id: str | None = None


@dataclass
class Outcome:
    segment_id: int
    compute_id: str
    mode: Mode
    status: Literal["succeeded", "failed"]
    error: str | None = None
    publication: writer.Publication | None = None


@dataclass
class _Target:
    segment: Segment
    definition: SegmentDefinition | LookalikeDefinition
    state: ComputeState
    compute_id: str
    mode: Mode
    version: int = 0
    started: float = field(default_factory=time.perf_counter)


def load_segment(runtime: Runtime, tenant_id: int, segment_id: int) -> Segment | None:
    segment = runtime.documents.load(keys.segment_key(tenant_id, segment_id), Segment)
    return segment if segment is not None and segment.tenant == tenant_id else None


def _effective_mode(requested: Mode, segment: Segment, state: ComputeState, now: datetime) -> Mode:
    """A delta needs a previous successful compute of the same definition at an earlier `now`."""
    if requested == "full" or state.last_computed_at is None or state.watermark is None:
        return "full"
    if state.definition_version != segment.version or now < state.last_computed_at:
        return "full"
    return "delta"


def compute(
    runtime: Runtime, tenant_id: int, requests: Sequence[Request], now: datetime | None = None
) -> list[Outcome]:
    """Compute the requested segments at one `now`: one pass for the full ones, one for the deltas."""
    now = now or clock.now_millis()
    targets: list[_Target] = []
    outcomes: list[Outcome] = []
    for request in requests:
        compute_id = request.compute_id or uuid.uuid4().hex
        segment = load_segment(runtime, tenant_id, request.segment_id)
        if segment is None:
            continue  # deleted since it was requested: nothing to compute, nothing to record
        if segment.definition is None:
            outcomes.append(
                _fail_early(
                    runtime, tenant_id, request.segment_id, compute_id, request.mode, now, "segment has no definition"
                )
            )
            continue
        state = runtime.documents.load(keys.compute_state_key(tenant_id, segment.id), ComputeState)
        state = state or ComputeState(segment_id=segment.id)
        if segment.segment_type == "lookalike":
            # Always full: every score moves when the model is retrained. A seed that became
            # unusable (deleted, emptied) fails this compute for good instead of being retried.
            try:
                lookalike = parse_lookalike(segment.definition)
                checked_seed(runtime, tenant_id, lookalike)
            except SegOpsError as exc:
                outcomes.append(_fail_early(runtime, tenant_id, segment.id, compute_id, "full", now, exc.message))
                continue
            targets.append(_Target(segment, lookalike, state, compute_id, "full"))
            continue
        mode = _effective_mode(request.mode, segment, state, now)
        targets.append(_Target(segment, parse_definition(segment.definition), state, compute_id, mode))
    if not targets:
        return outcomes
    for target in targets:
        _mark_running(runtime, tenant_id, target, now)
    _assign_versions(runtime, tenant_id, targets)
    watermark = _warehouse_clock(runtime)
    for mode in ("full", "delta"):
        group = [t for t in targets if t.mode == mode and isinstance(t.definition, SegmentDefinition)]
        if group:
            outcomes.extend(_run_group(runtime, tenant_id, group, now, watermark))
    for target in targets:
        if isinstance(target.definition, LookalikeDefinition):
            outcomes.extend(_run_group(runtime, tenant_id, [target], now, watermark))
    return outcomes


def _assign_versions(runtime: Runtime, tenant_id: int, targets: list[_Target]) -> None:
    """Fresh membership versions, increasing per tenant (so per segment) across computes."""
    for start in range(0, len(targets), _VERSIONS_PER_JOB):
        base = runtime.documents.next_id(f"membership-versions-t{tenant_id}") * _VERSIONS_PER_JOB
        for i, target in enumerate(targets[start : start + _VERSIONS_PER_JOB]):
            target.version = base + i


def _run_group(
    runtime: Runtime, tenant_id: int, group: list[_Target], now: datetime, watermark: datetime
) -> list[Outcome]:
    stage_id = uuid.uuid4().hex
    mode: Mode = group[0].mode
    try:
        with statistics.measuring() as work:
            publications = _evaluate_and_publish(runtime, tenant_id, group, now, stage_id)
    except Exception as exc:
        message, incident = tenant_message(exc)
        for target in group:
            _mark_failed(runtime, tenant_id, target, message[:500])
        log.exception("compute failed", extra={"tenant_id": tenant_id, "mode": mode, "incident": incident})
        raise
    metering.compute_pass(runtime, tenant_id, [t.compute_id for t in group], mode, work)
    outcomes = []
    for target, publication in zip(group, publications, strict=True):
        _mark_succeeded(runtime, tenant_id, target, publication, now, watermark)
        outcomes.append(Outcome(target.segment.id, target.compute_id, mode, "succeeded", None, publication))
    _after_publication(runtime, tenant_id, outcomes, now)
    return outcomes


def _evaluate_and_publish(
    runtime: Runtime, tenant_id: int, group: list[_Target], now: datetime, stage_id: str
) -> list[writer.Publication]:
    mode: Mode = group[0].mode
    targets = [writer.Target(t.segment.id, t.version, t.compute_id) for t in group]
    lookalike = group[0].definition
    if isinstance(lookalike, LookalikeDefinition):  # a lookalike is computed on its own
        lookalike_service.stage_members(runtime, tenant_id, stage_id, group[0].segment.id, lookalike, now)
        return writer.publish(runtime, tenant_id, targets, stage_id=stage_id, mode=mode, computed_at=now)
    source = None
    if mode == "delta":
        select, params = _candidates_query(group, now)
        if writer.stage_candidates(runtime, tenant_id, stage_id, select, params) == 0:
            return [writer.Publication(t.segment.id, None, 0, 0, t.state.member_count or 0) for t in group]
        source = writer.candidate_source(stage_id)
    compiled = compile_segments(
        [(t.segment.id, t.definition) for t in group if isinstance(t.definition, SegmentDefinition)], source
    )
    writer.stage_results(runtime, tenant_id, stage_id, compiled, now)
    return writer.publish(runtime, tenant_id, targets, stage_id=stage_id, mode=mode, computed_at=now)


def _windows(definitions: Iterable[SegmentDefinition | LookalikeDefinition]) -> dict[int, set[str]]:
    """Window length (ms) → event types whose events can cross it with the passage of time."""
    found: dict[int, set[str]] = {}
    for definition in definitions:
        if isinstance(definition, LookalikeDefinition):
            continue
        for c in conditions(definition):
            if isinstance(c, (EventCount, Monetary, Recency)) and c.window_days is not None:
                found.setdefault(window_milliseconds(c.window_days), set()).add(c.event_type)
    return found


def _candidates_query(group: list[_Target], now: datetime) -> tuple[str, dict[str, Any]]:
    last_now = min(t.state.last_computed_at for t in group if t.state.last_computed_at is not None)
    since = min(t.state.watermark for t in group if t.state.watermark is not None) - ARRIVAL_MARGIN
    params: dict[str, Any] = {"since": since, "last_now": last_now, "now": now}
    crossings = ["(occurred_at > {last_now:DateTime64(3, 'UTC')} AND occurred_at <= {now:DateTime64(3, 'UTC')})"]
    for i, (window, event_types) in enumerate(sorted(_windows(t.definition for t in group).items())):
        params[f"w{i}"] = window
        params[f"w{i}_types"] = sorted(event_types)
        crossings.append(
            f"(event_type IN {{w{i}_types:Array(String)}} "
            f"AND occurred_at >= subtractMilliseconds({{last_now:DateTime64(3, 'UTC')}}, {{w{i}:Int64}}) "
            f"AND occurred_at <= subtractMilliseconds({{now:DateTime64(3, 'UTC')}}, {{w{i}:Int64}}))"
        )
    select = (
        "SELECT user_id FROM event_arrivals WHERE tenant_id = {tenant_id:UInt64} "
        "AND arrived_at >= {since:DateTime64(3, 'UTC')} "
        "UNION ALL SELECT user_id FROM event_timeline WHERE tenant_id = {tenant_id:UInt64} AND ("
        + " OR ".join(crossings)
        + ")"
    )
    return select, params


def _warehouse_clock(runtime: Runtime) -> datetime:
    value = runtime.warehouse.query("SELECT now64(3) AS now").scalar()
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- compute state and side effects ------------------------------------------------------------


def _update_state(runtime: Runtime, tenant_id: int, segment_id: int, change: Any) -> None:
    key = keys.compute_state_key(tenant_id, segment_id)
    if runtime.documents.update(key, ComputeState, change) is None:
        runtime.documents.save(key, change(ComputeState(segment_id=segment_id)))


def _mark_running(runtime: Runtime, tenant_id: int, target: _Target, now: datetime) -> None:
    def change(state: ComputeState) -> ComputeState:
        return state.model_copy(
            update={
                "compute_id": target.compute_id,
                "status": "running",
                "mode": target.mode,
                "error": None,
                "requested_at": state.requested_at if state.compute_id == target.compute_id else now,
                "started_at": clock.now(),
                "finished_at": None,
                "computed_at": now,
            }
        )

    _update_state(runtime, tenant_id, target.segment.id, change)


def _mark_failed(runtime: Runtime, tenant_id: int, target: _Target, error: str) -> None:
    def change(state: ComputeState) -> ComputeState:
        return state.model_copy(
            update={
                "compute_id": target.compute_id,
                "status": "failed",
                "error": error,
                "finished_at": clock.now(),
                "duration_ms": round((time.perf_counter() - target.started) * 1000, 3),
            }
        )

    _update_state(runtime, tenant_id, target.segment.id, change)


def _fail_early(
    runtime: Runtime, tenant_id: int, segment_id: int, compute_id: str, mode: Mode, now: datetime, error: str
) -> Outcome:
    def change(state: ComputeState) -> ComputeState:
        return state.model_copy(
            update={
                "compute_id": compute_id,
                "status": "failed",
                "mode": mode,
                "error": error,
                "finished_at": clock.now(),
                "computed_at": now,
            }
        )

    _update_state(runtime, tenant_id, segment_id, change)
    return Outcome(segment_id, compute_id, mode, "failed", error)


def _mark_succeeded(
    runtime: Runtime,
    tenant_id: int,
    target: _Target,
    publication: writer.Publication,
    now: datetime,
    watermark: datetime,
) -> None:
    def change(state: ComputeState) -> ComputeState:
        return state.model_copy(
            update={
                "compute_id": target.compute_id,
                "status": "succeeded",
                "mode": target.mode,
                "error": None,
                "finished_at": clock.now(),
                "computed_at": now,
                "last_computed_at": now,
                "member_count": publication.member_count,
                "entered_count": publication.entered_count,
                "exited_count": publication.exited_count,
                "duration_ms": round((time.perf_counter() - target.started) * 1000, 3),
                "definition_version": target.segment.version,
                "snapshot": publication.version if publication.version is not None else state.snapshot,
                "watermark": watermark,
            }
        )

    _update_state(runtime, tenant_id, target.segment.id, change)


def _after_publication(runtime: Runtime, tenant_id: int, outcomes: list[Outcome], now: datetime) -> None:
    """Drop cached lookups of users whose membership changed, then tell the connectors."""
    published = [o.publication for o in outcomes if o.publication is not None and o.publication.version is not None]
    invalidate_users(runtime, tenant_id, writer.changed_users(runtime, tenant_id, published))
    for outcome in outcomes:
        publication = outcome.publication
        if publication is None or publication.version is None:
            continue
        message = MembershipChanged(
            tenant_id=tenant_id,
            segment_id=outcome.segment_id,
            compute_id=outcome.compute_id,
            computed_at=now,
            entered_count=publication.entered_count,
            exited_count=publication.exited_count,
        )
        runtime.bus.publish(
            Topic.MEMBERSHIP_CHANGES,
            message.model_dump_json().encode(),
            {"tenant_id": str(tenant_id), "segment_id": str(outcome.segment_id)},
        )
    seeds = {o.segment_id for o in outcomes if o.publication is not None and o.publication.version is not None}
    if seeds:
        _request_lookalikes(runtime, tenant_id, seeds, now)


def _request_lookalikes(runtime: Runtime, tenant_id: int, seeds: set[int], now: datetime) -> None:
    """Lookalikes follow their seed: each active one whose seed just changed is queued for a compute."""
    for segment in active_segments(runtime, tenant_id):
        if segment.segment_type != "lookalike" or not segment.definition:
            continue
        if segment.definition.get("seed_segment_id") not in seeds:
            continue
        request = ComputeRequested(
            tenant_id=tenant_id, segment_id=segment.id, compute_id=uuid.uuid4().hex, mode="full", requested_at=now
        )
        runtime.bus.publish(
            Topic.SEGMENT_COMPUTE,
            SegmentComputeEnvelope(message=request).model_dump_json().encode(),
            {"tenant_id": str(tenant_id), "kind": "compute"},
        )
