"""One compute at a time per tenant; nothing requested is ever lost; notices are debounced.

State lives in one control-plane document per tenant, `compute-tenants/<tenant_id>`
(`TenantQueue`), changed only by compare-and-swap:
- requests are merged into it (per segment the stronger mode wins; "all active segments, delta"
  and "time-dependent segments, delta" are flags);
- whoever finds no live lease takes it and drains the queue until it is empty, releasing the lease
  in the same CAS that finds it empty, so a request merged meanwhile is always seen by someone;
- the work a holder takes stays in the document (`taken`) until it is done: failed work goes back on
  the queue before the error is re-raised, and work whose holder died, or could not put it back (the
  store itself failing), is put back by the next holder, so nothing taken is lost. A holder that dies
  leaves its lease to expire; the next message or scheduled tick for the tenant takes over;
- a holder takes no new work once its time budget (`compute_drain_budget_seconds`) is spent: it
  releases the lease and, if work is left, publishes a `DrainRequested` for the tenant, so a busy
  tenant continues in a fresh invocation instead of overrunning the function's timeout.

Debounce: a "users changed" notice published at P asks for an all-active delta due at
`P + compute_debounce_seconds` (the first pending notice fixes the due time); the holder waits
until it is due, so notices arriving meanwhile join the same compute. A notice published before
the snapshot of an all-active delta that already ran is covered by it and dropped — which also
makes a backlog of notices delivered one after another collapse into one compute.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from segops import clock
from segops.bus.base import Topic
from segops.compute import engine
from segops.compute.plan import Request
from segops.dsl import is_time_dependent, parse_definition
from segops.errors import Conflict
from segops.membership import writer
from segops.messages import DrainRequested, SegmentComputeEnvelope
from segops.runtime import Runtime
from segops.segments.active import active_segments
from segops.segments.models import ComputeState
from segops.store import keys

log = logging.getLogger("segops.compute")

Mode = Literal["full", "delta"]
LEASE = timedelta(seconds=600)  # longer than the function timeout: a live holder never loses it
CLOCK_MARGIN = timedelta(milliseconds=500)  # publisher/consumer clock skew (at most half the debounce window)
MAX_FUTURE_DELTAS = 64


class PendingSegment(BaseModel):
    mode: Mode
    compute_id: str | None = None


class Taken(BaseModel):
    """Work a holder took and has not finished: put back on the queue unless it is done."""

    segments: dict[int, PendingSegment] = Field(default_factory=dict)
    time_delta: bool = False
    active_delta_due: datetime | None = None
    # What `covered_until` becomes once the all-active delta taken here has run.
    covers_until: datetime | None = None


class TenantQueue(BaseModel):
    tenant_id: int
    holder: str | None = None
    lease_until: datetime | None = None
    segments: dict[int, PendingSegment] = Field(default_factory=dict)
    active_delta_due: datetime | None = None
    time_delta: bool = False
    covered_until: datetime | None = None  # notices published before this are in an all-active delta
    compacted_at: datetime | None = None  # the membership change log's last compaction
    taken: Taken | None = None
    # When stored events dated after their receipt take effect: an all-active delta is due at each
    # (the first drain after it: the scheduled tick's), as a delta then counts the events whose
    # `occurred_at` it crossed. Sorted; at most `MAX_FUTURE_DELTAS`.
    future_deltas: list[datetime] = Field(default_factory=list)

    def has_work(self) -> bool:
        """Work to run now or soon (`future_deltas` wait for the scheduled tick)."""
        return bool(self.segments) or self.time_delta or self.active_delta_due is not None or self.taken is not None

    def put_back(self) -> TenantQueue:
        """The queue with its taken work pending again (full wins per segment; the earlier due delta)."""
        if self.taken is None:
            return self
        segments = dict(self.segments)
        for segment_id, pending in self.taken.segments.items():
            if segment_id not in segments or pending.mode == "full":
                segments[segment_id] = pending
        due = self.active_delta_due
        if self.taken.active_delta_due is not None:
            due = min(due, self.taken.active_delta_due) if due else self.taken.active_delta_due
        return self.model_copy(
            update={
                "segments": segments,
                "time_delta": self.time_delta or self.taken.time_delta,
                "active_delta_due": due,
                "taken": None,
            }
        )


def _change(runtime: Runtime, tenant_id: int, change: Callable[[TenantQueue], TenantQueue]) -> TenantQueue:
    key = keys.compute_queue_key(tenant_id)
    docs = runtime.documents
    if docs.store.get(key) is None:
        with contextlib.suppress(Conflict):  # created concurrently: update it all the same
            docs.create(key, TenantQueue(tenant_id=tenant_id))
    updated = docs.update(key, TenantQueue, change)
    assert updated is not None
    return updated


def request_segment(runtime: Runtime, tenant_id: int, segment_id: int, mode: Mode, compute_id: str | None) -> None:
    def merge(queue: TenantQueue) -> TenantQueue:
        current = queue.segments.get(segment_id)
        stronger: Mode = "full" if mode == "full" or (current and current.mode == "full") else "delta"
        segments = {**queue.segments, segment_id: PendingSegment(mode=stronger, compute_id=compute_id)}
        return queue.model_copy(update={"segments": segments})

    _change(runtime, tenant_id, merge)


def notice_users_changed(
    runtime: Runtime, tenant_id: int, published_at: datetime, effective_at: datetime | None = None
) -> bool:
    """Queue a debounced all-active delta; False when an earlier compute already covers the notice.
    Events that take effect later (`effective_at`) also get a delta due then (`TenantQueue.future_deltas`)."""
    debounce = timedelta(seconds=runtime.settings.compute_debounce_seconds)
    covered = False

    def merge(queue: TenantQueue) -> TenantQueue:
        nonlocal covered
        if effective_at is not None and effective_at > published_at + debounce:
            queue = queue.model_copy(update={"future_deltas": _with_future(queue.future_deltas, effective_at)})
        # Covered by a delta that ran, or by the one running: should that fail, it is put back pending.
        covers = [queue.covered_until, queue.taken.covers_until if queue.taken else None]
        covered = any(until is not None and published_at <= until for until in covers)
        if covered:
            return queue
        due = queue.active_delta_due or published_at + debounce
        return queue.model_copy(update={"active_delta_due": due})

    _change(runtime, tenant_id, merge)
    return not covered


def _with_future(dues: list[datetime], due: datetime) -> list[datetime]:
    """`dues` with `due`, sorted; past the cap the two closest merge into the later (a later delta
    still crosses the earlier events' times: they count a little late, never not at all)."""
    merged = sorted({*dues, due})
    while len(merged) > MAX_FUTURE_DELTAS:
        gaps = [(merged[i + 1] - merged[i], i) for i in range(len(merged) - 1)]
        _, closest = min(gaps)
        del merged[closest]
    return merged


def request_time_delta(runtime: Runtime, tenant_id: int) -> None:
    _change(runtime, tenant_id, lambda q: q.model_copy(update={"time_delta": True}))


def compact_if_due(runtime: Runtime, tenant_id: int) -> bool:
    """Compact the tenant's membership change log if `membership_history_hours` passed since the last time."""
    history = timedelta(hours=runtime.settings.membership_history_hours)
    claimed = False

    def claim(queue: TenantQueue) -> TenantQueue:
        nonlocal claimed
        now = clock.now()
        claimed = queue.compacted_at is None or queue.compacted_at <= now - history
        return queue.model_copy(update={"compacted_at": now}) if claimed else queue

    _change(runtime, tenant_id, claim)
    if claimed:
        writer.compact(runtime, tenant_id, clock.now() - history)
    return claimed


def tenants_with_queues(runtime: Runtime) -> list[int]:
    return sorted(int(key[len(keys.COMPUTE_QUEUES_PREFIX) :]) for key in runtime.store.list(keys.COMPUTE_QUEUES_PREFIX))


def drain(runtime: Runtime, tenant_id: int) -> None:
    """Run the tenant's queued computes if nobody else is; return when the queue is empty, or when the
    time budget is spent (after at least one compute, so every invocation makes progress)."""
    holder = uuid.uuid4().hex
    if not _acquire(runtime, tenant_id, holder):
        return
    deadline = time.monotonic() + runtime.settings.compute_drain_budget_seconds
    try:
        while True:
            taken = _take(runtime, tenant_id, holder)
            if taken is None:
                return
            if isinstance(taken, float):
                if time.monotonic() + taken > deadline:
                    _hand_over(runtime, tenant_id, holder)
                    return
                time.sleep(taken)
                continue
            _run(runtime, tenant_id, taken)
            if time.monotonic() >= deadline:
                _hand_over(runtime, tenant_id, holder)
                return
    except BaseException:
        _release_soon(runtime, tenant_id, holder)
        raise


# A failed drain releases its lease at once if it can: an unreleased lease holds the tenant's computes
# for `LEASE`. The store failing too is usually a blip: a few tries over ~10 s, then the lease expires.
RELEASE_WAITS = (1.0, 3.0, 6.0)


def _release_soon(runtime: Runtime, tenant_id: int, holder: str) -> None:
    for wait in (*RELEASE_WAITS, None):
        try:
            _release(runtime, tenant_id, holder)
            return
        except Exception:
            if wait is None:
                log.warning("compute lease of tenant %s left to expire", tenant_id, exc_info=True)
                return
            time.sleep(wait)


def _hand_over(runtime: Runtime, tenant_id: int, holder: str) -> None:
    """Out of budget: release the lease and, if work is left, ask for a fresh invocation to continue."""
    if not _release(runtime, tenant_id, holder).has_work():
        return
    request = DrainRequested(tenant_id=tenant_id)
    runtime.bus.publish(
        Topic.SEGMENT_COMPUTE,
        SegmentComputeEnvelope(message=request).model_dump_json().encode(),
        {"tenant_id": str(tenant_id), "kind": "drain"},
    )


def _acquire(runtime: Runtime, tenant_id: int, holder: str) -> bool:
    acquired = False

    def take_lease(queue: TenantQueue) -> TenantQueue:
        nonlocal acquired
        now = clock.now()
        acquired = queue.holder is None or queue.lease_until is None or queue.lease_until < now
        if not acquired:
            return queue
        return queue.model_copy(update={"holder": holder, "lease_until": now + LEASE})

    _change(runtime, tenant_id, take_lease)
    return acquired


def _release(runtime: Runtime, tenant_id: int, holder: str) -> TenantQueue:
    def release(queue: TenantQueue) -> TenantQueue:
        if queue.holder != holder:
            return queue
        return queue.model_copy(update={"holder": None, "lease_until": None})

    return _change(runtime, tenant_id, release)


def _take(runtime: Runtime, tenant_id: int, holder: str) -> TenantQueue | float | None:
    """The work to run now (and clear it), seconds to wait for a debounced delta, or None: released."""
    result: TenantQueue | float | None = None

    def take(queue: TenantQueue) -> TenantQueue:
        nonlocal result
        now = clock.now()
        queue = queue.put_back()  # what a holder that died or failed left taken
        if queue.future_deltas and queue.future_deltas[0] <= now:
            # Events dated after their receipt have taken effect: an all-active delta is due now.
            later = [due for due in queue.future_deltas if due > now]
            due_now = min(queue.active_delta_due, now) if queue.active_delta_due else now
            queue = queue.model_copy(update={"future_deltas": later, "active_delta_due": due_now})
        due = queue.active_delta_due
        ready_delta = due is not None and due <= now
        if not (queue.segments or queue.time_delta or ready_delta):
            if due is not None:
                result = max((due - now).total_seconds(), 0.001)
                return queue.model_copy(update={"lease_until": now + LEASE})
            result = None
            return queue.model_copy(update={"holder": None, "lease_until": None})
        result = queue.model_copy(update={"active_delta_due": due if ready_delta else None})
        taken = Taken(
            segments=queue.segments,
            time_delta=queue.time_delta,
            active_delta_due=due if ready_delta else None,
            covers_until=now - _margin(runtime) if ready_delta else None,
        )
        return queue.model_copy(
            update={
                "segments": {},
                "time_delta": False,
                "active_delta_due": None if ready_delta else due,
                "lease_until": now + LEASE,
                "taken": taken,
            }
        )

    _change(runtime, tenant_id, take)
    if isinstance(result, TenantQueue) and result.holder != holder:
        raise RuntimeError("compute lease lost")
    return result


def _margin(runtime: Runtime) -> timedelta:
    return min(CLOCK_MARGIN, timedelta(seconds=runtime.settings.compute_debounce_seconds / 2))


def _requests(runtime: Runtime, tenant_id: int, work: TenantQueue) -> list[Request]:
    requests = [Request(segment_id, p.mode, p.compute_id) for segment_id, p in sorted(work.segments.items())]
    explicit = set(work.segments)
    if work.active_delta_due is not None or work.time_delta:
        for segment in active_segments(runtime, tenant_id):
            if segment.id in explicit or segment.definition is None:
                continue
            if segment.segment_type == "lookalike":
                # Retrained on the scheduler at most every `lookalike_refresh_minutes` (and after its
                # seed publishes, see `engine`), not on every arrival of events.
                if work.time_delta and _lookalike_due(runtime, tenant_id, segment.id):
                    requests.append(Request(segment.id, "full"))
                continue
            if work.active_delta_due is not None or is_time_dependent(parse_definition(segment.definition)):
                requests.append(Request(segment.id, "delta"))
    return requests


def _lookalike_due(runtime: Runtime, tenant_id: int, segment_id: int) -> bool:
    state = runtime.documents.load(keys.compute_state_key(tenant_id, segment_id), ComputeState)
    if state is None or state.last_computed_at is None:
        return True
    return clock.now() - state.last_computed_at >= timedelta(minutes=runtime.settings.lookalike_refresh_minutes)


def _run(runtime: Runtime, tenant_id: int, work: TenantQueue) -> None:
    try:
        engine.compute(runtime, tenant_id, _requests(runtime, tenant_id, work))
    except Exception:
        # Put back now; if the store is failing too, the next holder puts it back (`TenantQueue.taken`).
        with contextlib.suppress(Exception):
            _change(runtime, tenant_id, lambda queue: queue.put_back())
        raise
    _change(runtime, tenant_id, _done)


def _done(queue: TenantQueue) -> TenantQueue:
    """The taken work ran: it is no one's any more, and the notices its delta covered are covered."""
    if queue.taken is None:
        return queue
    covered = queue.covered_until
    if queue.taken.covers_until is not None:
        covered = max(covered, queue.taken.covers_until) if covered else queue.taken.covers_until
    return queue.model_copy(update={"taken": None, "covered_until": covered})
