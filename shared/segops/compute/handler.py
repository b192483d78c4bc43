"""The `segment-compute` topic: compute requests, "users changed" notices, scheduled ticks."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from segops.bus.base import BusMessage
from segops.compute import runner
from segops.errors import PermanentError, RetryableError
from segops.messages import (
    ComputeRequested,
    ScheduledTick,
    SegmentComputeEnvelope,
    SegmentComputeMessage,
    UsersChanged,
)
from segops.runtime import Runtime
from segops.segments.models import ComputeState
from segops.store import keys

log = logging.getLogger("segops.compute")

_BARE: TypeAdapter[Any] = TypeAdapter(SegmentComputeMessage)


def parse(message: BusMessage) -> ComputeRequested | UsersChanged | ScheduledTick:
    """A `SegmentComputeEnvelope`, or a bare message (Cloud Scheduler publishes `{"kind": "scheduled"}`)."""
    try:
        raw = orjson.loads(message.data)
        if isinstance(raw, dict) and "message" in raw:
            parsed: ComputeRequested | UsersChanged | ScheduledTick = SegmentComputeEnvelope.model_validate(raw).message
            return parsed
        bare: ComputeRequested | UsersChanged | ScheduledTick = _BARE.validate_python(raw)
        return bare
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise PermanentError("malformed segment-compute message") from exc


def handle_segment_compute(message: BusMessage, runtime: Runtime) -> None:
    """Bus handler. Raising `RetryableError` nacks; queued work survives in the tenant's queue."""
    body = parse(message)
    if isinstance(body, ScheduledTick):
        _tick(runtime)
        return
    tenant_id = body.tenant_id
    if isinstance(body, ComputeRequested):
        if _already_done(runtime, body):
            return
        runner.request_segment(runtime, tenant_id, body.segment_id, body.mode, body.compute_id)
    elif not runner.notice_users_changed(runtime, tenant_id, message.publish_time):
        return
    try:
        runner.drain(runtime, tenant_id)
    except Exception as exc:
        raise RetryableError(f"compute of tenant {tenant_id} failed: {type(exc).__name__}") from exc


def _already_done(runtime: Runtime, request: ComputeRequested) -> bool:
    """A redelivered request whose compute already finished is acknowledged without running again."""
    state = runtime.documents.load(keys.compute_state_key(request.tenant_id, request.segment_id), ComputeState)
    return state is not None and state.compute_id == request.compute_id and state.status in ("succeeded", "failed")


def _tick(runtime: Runtime) -> None:
    """Delta computes of every tenant's time-dependent segments (and any work a dead holder left)."""
    for tenant_id in runner.tenants_with_queues(runtime):
        try:
            runner.request_time_delta(runtime, tenant_id)
            runner.drain(runtime, tenant_id)
        except Exception:
            # The work is back on the tenant's queue; the next tick or message retries it.
            log.exception("scheduled compute failed", extra={"tenant_id": tenant_id})
