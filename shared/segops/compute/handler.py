"""The `segment-compute` topic: compute requests, "users changed" notices, scheduled ticks (the
scheduler's, fanned out here into one per tenant) and hand-overs of a tenant's queue."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from segops.bus.base import BusMessage, Topic
from segops.compute import runner
from segops.errors import PermanentError, RetryableError
from segops.messages import (
    ComputeRequested,
    DrainRequested,
    ScheduledTick,
    SegmentComputeEnvelope,
    SegmentComputeMessage,
    UsersChanged,
)
from segops.runtime import Runtime
from segops.segments.models import ComputeState
from segops.store import keys

_BARE: TypeAdapter[Any] = TypeAdapter(SegmentComputeMessage)


Body = ComputeRequested | UsersChanged | ScheduledTick | DrainRequested


def parse(message: BusMessage) -> Body:
    """A `SegmentComputeEnvelope`, or a bare message (Cloud Scheduler publishes `{"kind": "scheduled"}`)."""
    try:
        raw = orjson.loads(message.data)
        if isinstance(raw, dict) and "message" in raw:
            parsed: Body = SegmentComputeEnvelope.model_validate(raw).message
            return parsed
        bare: Body = _BARE.validate_python(raw)
        return bare
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise PermanentError("malformed segment-compute message") from exc


def handle_segment_compute(message: BusMessage, runtime: Runtime) -> None:
    """Bus handler. Raising `RetryableError` nacks; queued work survives in the tenant's queue."""
    body = parse(message)
    if isinstance(body, ScheduledTick) and body.tenant_id is None:
        _fan_out(runtime)
        return
    tenant_id = body.tenant_id
    assert tenant_id is not None
    if isinstance(body, ScheduledTick):
        runner.request_time_delta(runtime, tenant_id)
    elif isinstance(body, ComputeRequested):
        if _already_done(runtime, body):
            return
        runner.request_segment(runtime, tenant_id, body.segment_id, body.mode, body.compute_id)
    elif isinstance(body, UsersChanged) and not runner.notice_users_changed(
        runtime, tenant_id, message.publish_time, body.effective_at
    ):
        return
    try:
        runner.drain(runtime, tenant_id)
        if isinstance(body, ScheduledTick):
            runner.compact_if_due(runtime, tenant_id)
    except Exception as exc:
        raise RetryableError(f"compute of tenant {tenant_id} failed: {type(exc).__name__}") from exc


def _already_done(runtime: Runtime, request: ComputeRequested) -> bool:
    """A redelivered request whose compute already finished is acknowledged without running again."""
    state = runtime.documents.load(keys.compute_state_key(request.tenant_id, request.segment_id), ComputeState)
    return state is not None and state.compute_id == request.compute_id and state.status in ("succeeded", "failed")


def _fan_out(runtime: Runtime) -> None:
    """One tick per tenant with a compute queue: time-dependent deltas (and any work a dead holder
    left), each tenant in its own invocation so one busy tenant cannot hold up the others."""
    for tenant_id in runner.tenants_with_queues(runtime):
        tick = SegmentComputeEnvelope(message=ScheduledTick(tenant_id=tenant_id))
        runtime.bus.publish(
            Topic.SEGMENT_COMPUTE, tick.model_dump_json().encode(), {"tenant_id": str(tenant_id), "kind": "scheduled"}
        )
