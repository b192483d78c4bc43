"""Queueing a segment's compute: the state document says `queued`, and `segment_compute` gets the
request on the bus (docs/compute.md § Triggers)."""

from __future__ import annotations

import uuid
from typing import Literal

from segops import clock
from segops.bus.base import Topic
from segops.messages import ComputeRequested, SegmentComputeEnvelope
from segops.runtime import Runtime
from segops.segments.models import ComputeState
from segops.store import keys


def queue_compute(runtime: Runtime, tenant_id: int, segment_id: int, mode: Literal["full", "delta"]) -> None:
    """Mark the segment's compute `queued` and publish the request. A request made while a compute
    that covers it is still queued (not started: the same mode, or a full one) joins it: both
    messages carry its compute id, and the second finds it finished and runs nothing
    (`segops.compute.handler`). A running compute reports itself; ours follows it. A delta whose
    segment has no successful compute of its current definition runs in full (`segops.compute.plan`)."""
    requested_at = clock.now()
    chosen = uuid.uuid4().hex

    def queued(state: ComputeState) -> ComputeState:
        nonlocal chosen
        if state.status == "running":
            chosen = uuid.uuid4().hex
            return state
        if state.status == "queued" and state.compute_id and state.mode in ("full", mode):
            chosen = state.compute_id
            return state
        chosen = uuid.uuid4().hex
        update = {"compute_id": chosen, "status": "queued", "mode": mode, "error": None, "requested_at": requested_at}
        return state.model_copy(update=update)

    key = keys.compute_state_key(tenant_id, segment_id)
    if runtime.documents.update(key, ComputeState, queued) is None:
        runtime.documents.save(key, queued(ComputeState(segment_id=segment_id)))
    publish_compute_request(
        runtime,
        ComputeRequested(
            tenant_id=tenant_id, segment_id=segment_id, compute_id=chosen, mode=mode, requested_at=requested_at
        ),
    )


def publish_compute_request(runtime: Runtime, request: ComputeRequested) -> None:
    """`request` on `segment-compute`, for `segment_compute` to run."""
    runtime.bus.publish(
        Topic.SEGMENT_COMPUTE,
        SegmentComputeEnvelope(message=request).model_dump_json().encode(),
        {"tenant_id": str(request.tenant_id), "kind": "compute"},
    )
