"""`POST /api/segments/<id>/compute/` (202 `{"status": "queued"}`) and `GET` of the same path."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from segops.boundary import StrictModel
from segops.compute.engine import load_segment
from segops.errors import Conflict, NotFound
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.segments.computes import queue_compute
from segops.segments.models import ComputeState, ComputeStatus
from segops.store import keys

router = Router("/api/segments/<int:segment_id>/compute")
# The segment names its tenant (docs/api.md, "Tenant selection"), as on the segment's other routes.
SEGMENT = ("segment_id", keys.segment_key)


class ComputeQuery(StrictModel):
    mode: Literal["full", "delta"] = "full"


class ComputeQueued(BaseModel):
    status: Literal["queued"]


class ComputeStatusOut(BaseModel):
    segment_id: int
    compute_id: str | None
    status: ComputeStatus | None
    mode: Literal["full", "delta"] | None
    error: str | None
    requested_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    computed_at: datetime | None
    last_computed_at: datetime | None
    member_count: int | None
    entered_count: int | None
    exited_count: int | None
    duration_ms: float | None


def _segment_or_404(ctx: RequestContext) -> int:
    segment_id = int(ctx.path_params["segment_id"])
    segment = load_segment(ctx.runtime, ctx.tenant_id, segment_id)
    if segment is None:
        raise NotFound("segment not found", {"id": segment_id})
    if segment.definition is None:
        raise Conflict("the segment has no definition yet: set one with PATCH first", {"id": segment_id})
    return segment_id


@router.post("/", tenant_from_object=SEGMENT, role="member", query=ComputeQuery, response=ComputeQueued, status=202)
def request_compute(ctx: RequestContext) -> Result:
    """Queue a membership compute of the segment (full by default; `?mode=delta` for a delta)."""
    queue_compute(ctx.runtime, ctx.tenant_id, _segment_or_404(ctx), ctx.query.mode)
    return Result({"status": "queued"}, 202)


@router.get("/", tenant_from_object=SEGMENT, response=ComputeStatusOut)
def compute_status(ctx: RequestContext) -> ComputeStatusOut:
    """The segment's latest compute: status, timings, member count, entered/exited counts."""
    segment_id = int(ctx.path_params["segment_id"])
    if load_segment(ctx.runtime, ctx.tenant_id, segment_id) is None:
        raise NotFound("segment not found", {"id": segment_id})
    state = ctx.runtime.documents.load(keys.compute_state_key(ctx.tenant_id, segment_id), ComputeState)
    state = state or ComputeState(segment_id=segment_id)
    return ComputeStatusOut.model_validate(state.model_dump(include=set(ComputeStatusOut.model_fields)))
