"""One compute of a tenant's segments, top to bottom: plan → evaluate → publish.

- `plan`: which segments, in which mode, grouped into passes (and, per delta pass, which users);
- `evaluate`: each pass's compiled SQL stages who is in each segment;
- `segops.membership.writer`: commits each pass's diffs at once, then invalidates and notifies
  (through an outbox, so a committed change is delivered even if this process dies right after).
Each segment's `ComputeState` follows along (`status`). Data only flows down: nothing here is
called back by the steps.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from segops import clock
from segops.cache.base import CacheUnavailable
from segops.compute import status
from segops.compute.evaluate import evaluate
from segops.compute.plan import Mode, Pass, Request, load_segment, plan
from segops.errors import DependencyDown, RetryableError, tenant_message
from segops.http.outages import as_outage
from segops.membership import writer
from segops.messages import ComputeRequested
from segops.metering import units as metering
from segops.runtime import Runtime
from segops.segments.active import active_segments
from segops.segments.computes import publish_compute_request
from segops.warehouse import statistics

__all__ = ["Outcome", "Request", "compute", "load_segment"]

log = logging.getLogger("segops.compute")


@dataclass
class Outcome:
    segment_id: int
    compute_id: str
    mode: Mode
    status: Literal["succeeded", "failed"]
    error: str | None = None
    publication: writer.Publication | None = None


def compute(
    runtime: Runtime, tenant_id: int, requests: Sequence[Request], now: datetime | None = None
) -> list[Outcome]:
    """Compute the requested segments at one `now`, pass by pass. A segment whose statement fails for
    a reason of its own (too slow, too large for the server) is recorded `failed` and the others go
    on (`_run_isolated`); a backend outage raises after recording it, for the whole request to be retried."""
    now = now or clock.now_millis()
    _request_lookalikes(runtime, tenant_id, writer.deliver_pending(runtime, tenant_id), now)
    planned = plan(runtime, tenant_id, requests, now)
    outcomes = []
    for rejected in planned.rejected:
        status.rejected(runtime, tenant_id, rejected, now)
        outcomes.append(Outcome(rejected.segment_id, rejected.compute_id, rejected.mode, "failed", rejected.error))
    if not planned.passes:
        return outcomes
    for work in planned.passes:
        for target in work.targets:
            status.running(runtime, tenant_id, target, now)
    watermark = _warehouse_clock(runtime)
    for work in planned.passes:
        outcomes.extend(_run_isolated(runtime, tenant_id, work, now, watermark))
    return outcomes


def _retryable(error: Exception) -> bool:
    """A failure of the backends rather than of the segments: running again later may succeed."""
    return isinstance(error, RetryableError | DependencyDown | CacheUnavailable) or as_outage(error) is not None


class _PassFailed(Exception):
    """A pass failed and its targets are recorded `failed` with `message`; the cause is the error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _run_isolated(runtime: Runtime, tenant_id: int, work: Pass, now: datetime, watermark: datetime) -> list[Outcome]:
    """`_run_pass`, and when it fails for a reason of its segments', each segment in a pass of its own:
    one segment that cannot be computed must not hold back the others, nor have them retried forever."""
    try:
        return _run_pass(runtime, tenant_id, work, now, watermark)
    except _PassFailed as caught:
        failed = caught
    cause = failed.__cause__
    assert isinstance(cause, Exception)
    if _retryable(cause):
        raise cause
    if len(work.targets) == 1:
        [target] = work.targets
        return [Outcome(target.segment.id, target.compute_id, work.mode, "failed", failed.message)]
    outcomes: list[Outcome] = []
    for target in work.targets:
        outcomes.extend(_run_isolated(runtime, tenant_id, Pass(work.mode, [target]), now, watermark))
    return outcomes


def _run_pass(runtime: Runtime, tenant_id: int, work: Pass, now: datetime, watermark: datetime) -> list[Outcome]:
    stage_id = uuid.uuid4().hex
    try:
        with statistics.measuring() as measured:
            candidates = evaluate(runtime, tenant_id, work, stage_id, now)
            if candidates != 0:
                targets = [
                    writer.Target(t.segment.id, t.version, t.compute_id, t.state.member_count or 0)
                    for t in work.targets
                ]
                publications, outbox = writer.publish(
                    runtime, tenant_id, targets, stage_id=stage_id, candidates=candidates, computed_at=now
                )
            else:  # a delta without candidates: nobody can have changed
                publications = [
                    writer.Publication(t.segment.id, None, 0, 0, t.state.member_count or 0) for t in work.targets
                ]
                outbox = None
    except Exception as exc:
        message, incident = tenant_message(exc)
        for target in work.targets:
            status.failed(runtime, tenant_id, target, message[:500])
        log.exception("compute failed", extra={"tenant_id": tenant_id, "mode": work.mode, "incident": incident})
        raise _PassFailed(message) from exc
    metering.compute_pass(runtime, tenant_id, [t.compute_id for t in work.targets], work.mode, measured)
    outcomes = []
    for target, publication in zip(work.targets, publications, strict=True):
        status.succeeded(runtime, tenant_id, target, publication, now, watermark)
        outcomes.append(Outcome(target.segment.id, target.compute_id, work.mode, "succeeded", None, publication))
    if outbox is not None:
        _request_lookalikes(runtime, tenant_id, writer.deliver(runtime, outbox), now)
    return outcomes


def _warehouse_clock(runtime: Runtime) -> datetime:
    value = runtime.warehouse.query("SELECT now64(3) AS now").scalar()
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _request_lookalikes(runtime: Runtime, tenant_id: int, seeds: set[int], now: datetime) -> None:
    """Lookalikes follow their seed: each active one whose seed just changed is queued for a compute."""
    if not seeds:
        return
    for segment in active_segments(runtime, tenant_id):
        if segment.segment_type != "lookalike" or not segment.definition:
            continue
        if segment.definition.get("seed_segment_id") not in seeds:
            continue
        request = ComputeRequested(
            tenant_id=tenant_id, segment_id=segment.id, compute_id=uuid.uuid4().hex, mode="full", requested_at=now
        )
        publish_compute_request(runtime, request)
