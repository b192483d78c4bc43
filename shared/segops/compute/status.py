"""A segment's compute state (`ComputeState`, what `GET .../compute/` shows) through one compute:
running → succeeded or failed; a rejected request goes straight to failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from segops import clock
from segops.compute.plan import Rejected, Target
from segops.membership.writer import Publication
from segops.runtime import Runtime
from segops.segments.models import ComputeState
from segops.store import keys


def _update(runtime: Runtime, tenant_id: int, segment_id: int, change: Callable[[ComputeState], ComputeState]) -> None:
    key = keys.compute_state_key(tenant_id, segment_id)
    if runtime.documents.update(key, ComputeState, change) is None:
        runtime.documents.save(key, change(ComputeState(segment_id=segment_id)))


def _duration_ms(target: Target) -> float:
    return round((time.perf_counter() - target.started) * 1000, 3)


def running(runtime: Runtime, tenant_id: int, target: Target, now: datetime) -> None:
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

    _update(runtime, tenant_id, target.segment.id, change)


def failed(runtime: Runtime, tenant_id: int, target: Target, error: str) -> None:
    def change(state: ComputeState) -> ComputeState:
        return state.model_copy(
            update={
                "compute_id": target.compute_id,
                "status": "failed",
                "error": error,
                "finished_at": clock.now(),
                "duration_ms": _duration_ms(target),
                # This run changed no membership: the counts of an earlier run are not its own.
                "entered_count": None,
                "exited_count": None,
            }
        )

    _update(runtime, tenant_id, target.segment.id, change)


def rejected(runtime: Runtime, tenant_id: int, request: Rejected, now: datetime) -> None:
    def change(state: ComputeState) -> ComputeState:
        return state.model_copy(
            update={
                "compute_id": request.compute_id,
                "status": "failed",
                "mode": request.mode,
                "error": request.error,
                # Refused before it started: nothing of an earlier run describes it.
                "started_at": None,
                "finished_at": clock.now(),
                "duration_ms": None,
                "entered_count": None,
                "exited_count": None,
                "computed_at": now,
            }
        )

    _update(runtime, tenant_id, request.segment_id, change)


def succeeded(
    runtime: Runtime, tenant_id: int, target: Target, publication: Publication, now: datetime, watermark: datetime
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
                "duration_ms": _duration_ms(target),
                "definition_version": target.segment.version,
                "snapshot": publication.version if publication.version is not None else state.snapshot,
                "watermark": watermark,
            }
        )

    _update(runtime, tenant_id, target.segment.id, change)
