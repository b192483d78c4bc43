"""Step 1 of a compute: which segments, in which mode, and (for a delta) which users.

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

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from segops.dsl import (
    EventCount,
    Monetary,
    Recency,
    SegmentDefinition,
    conditions,
    parse_definition,
    window_milliseconds,
)
from segops.errors import SegOpsError
from segops.lookalike.models import LookalikeDefinition, checked_seed, parse_lookalike
from segops.runtime import Runtime
from segops.segments.models import ComputeState, Segment
from segops.store import keys

Mode = Literal["full", "delta"]
# Inserts still in flight when a compute starts may land with an arrival time just before it.
ARRIVAL_MARGIN = timedelta(seconds=60)
_VERSIONS_PER_JOB = 1000
# Window crossings per candidate statement. Each binds two or three parameters, and a ClickHouse
# server refuses an HTTP request of more than 1,000 fields (`http_max_fields`), one per parameter.
# Past this many distinct windows, consecutive windows share one crossing whose range covers all of
# theirs: more candidates (each then evaluated exactly), never fewer.
MAX_CROSSINGS = 200


@dataclass(frozen=True)
class Request:
    segment_id: int
    mode: Mode
    compute_id: str | None = None


@dataclass
class Target:
    """One segment of a pass, with the membership version its publication will carry."""

    segment: Segment
    definition: SegmentDefinition | LookalikeDefinition
    state: ComputeState
    compute_id: str
    mode: Mode
    version: int = 0
    started: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class Rejected:
    """A requested segment that cannot be computed (its failure is recorded, not retried)."""

    segment_id: int
    compute_id: str
    mode: Mode
    error: str


@dataclass(frozen=True)
class Pass:
    """Segments evaluated together and published in one commit: all rule segments of one mode, or one lookalike."""

    mode: Mode
    targets: list[Target]


@dataclass(frozen=True)
class Plan:
    passes: list[Pass]
    rejected: list[Rejected]


def load_segment(runtime: Runtime, tenant_id: int, segment_id: int) -> Segment | None:
    segment = runtime.documents.load(keys.segment_key(tenant_id, segment_id), Segment)
    return segment if segment is not None and segment.tenant == tenant_id else None


def plan(runtime: Runtime, tenant_id: int, requests: Sequence[Request], now: datetime) -> Plan:
    """The passes that compute `requests` at `now`: one for the full ones, one for the deltas, one per lookalike."""
    targets: list[Target] = []
    rejected: list[Rejected] = []
    for request in requests:
        compute_id = request.compute_id or uuid.uuid4().hex
        segment = load_segment(runtime, tenant_id, request.segment_id)
        if segment is None:
            continue  # deleted since it was requested: nothing to compute, nothing to record
        if segment.definition is None:
            rejected.append(Rejected(request.segment_id, compute_id, request.mode, "segment has no definition"))
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
                rejected.append(Rejected(segment.id, compute_id, "full", exc.message))
                continue
            targets.append(Target(segment, lookalike, state, compute_id, "full"))
            continue
        mode = _effective_mode(request.mode, segment, state, now)
        targets.append(Target(segment, parse_definition(segment.definition), state, compute_id, mode))
    _assign_versions(runtime, tenant_id, targets)
    passes = [
        Pass(mode, group)
        for mode in ("full", "delta")
        if (group := [t for t in targets if t.mode == mode and isinstance(t.definition, SegmentDefinition)])
    ]
    passes += [Pass("full", [t]) for t in targets if isinstance(t.definition, LookalikeDefinition)]
    return Plan(passes, rejected)


def _effective_mode(requested: Mode, segment: Segment, state: ComputeState, now: datetime) -> Mode:
    """A delta needs a previous successful compute of the same definition at an earlier `now`."""
    if requested == "full" or state.last_computed_at is None or state.watermark is None:
        return "full"
    if state.definition_version != segment.version or now < state.last_computed_at:
        return "full"
    return "delta"


def _assign_versions(runtime: Runtime, tenant_id: int, targets: list[Target]) -> None:
    """Fresh membership versions, increasing per tenant (so per segment) across computes."""
    for start in range(0, len(targets), _VERSIONS_PER_JOB):
        base = runtime.documents.next_id(f"membership-versions-t{tenant_id}") * _VERSIONS_PER_JOB
        for i, target in enumerate(targets[start : start + _VERSIONS_PER_JOB]):
            target.version = base + i


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


def delta_candidates(targets: list[Target], now: datetime) -> tuple[str, dict[str, Any]]:
    """A tenant-scoped SELECT of the users a delta pass re-evaluates (arrivals and window crossings)."""
    last_now = min(t.state.last_computed_at for t in targets if t.state.last_computed_at is not None)
    since = min(t.state.watermark for t in targets if t.state.watermark is not None) - ARRIVAL_MARGIN
    params: dict[str, Any] = {"since": since, "last_now": last_now, "now": now}
    # `event_days` is sorted by (tenant, day, occurred_at): each range is bounded by its days too
    # (implied by the occurred_at bounds, so exact) for the primary key to read only that range.
    crossings = [_occurred_between("{last_now:DateTime64(3, 'UTC')}", "{now:DateTime64(3, 'UTC')}", lower_open=True)]
    windows = sorted(_windows(t.definition for t in targets).items())
    shares = min(len(windows), MAX_CROSSINGS)
    for i in range(shares):
        # Windows in ascending order: a crossing of several reads (last_now - longest, now - shortest].
        group = windows[len(windows) * i // shares : len(windows) * (i + 1) // shares]
        longest = f"w{i}"
        shortest = longest if len(group) == 1 else f"w{i}_shortest"
        params[longest], params[shortest] = group[-1][0], group[0][0]
        params[f"w{i}_types"] = sorted(set().union(*(types for _, types in group)))
        lower = f"subtractMilliseconds({{last_now:DateTime64(3, 'UTC')}}, {{{longest}:Int64}})"
        upper = f"subtractMilliseconds({{now:DateTime64(3, 'UTC')}}, {{{shortest}:Int64}})"
        crossings.append(f"(event_type IN {{w{i}_types:Array(String)}} AND {_occurred_between(lower, upper)})")
    select = (
        "SELECT user_id FROM event_arrivals WHERE tenant_id = {tenant_id:UInt64} "
        "AND arrived_at >= {since:DateTime64(3, 'UTC')} "
        "UNION ALL SELECT user_id FROM event_days WHERE tenant_id = {tenant_id:UInt64} AND ("
        + " OR ".join(crossings)
        + ")"
    )
    return select, params


def _occurred_between(lower: str, upper: str, lower_open: bool = False) -> str:
    """`occurred_at` in [lower, upper] (or (lower, upper]), with the days that range spans."""
    above = ">" if lower_open else ">="
    return (
        f"(day >= toDate32({lower}) AND day <= toDate32({upper}) "
        f"AND occurred_at {above} {lower} AND occurred_at <= {upper})"
    )
