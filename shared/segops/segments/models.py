"""Segment documents: `Segment` (owned by the segments API), `SegmentVersion` (immutable),
`ComputeState` (owned by segment_compute). Their keys: `segops.store.keys`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from segops import clock

SegmentType = Literal["rule", "ai", "lookalike"]
ComputeStatus = Literal["queued", "running", "succeeded", "failed"]


class Segment(BaseModel):
    id: int
    tenant: int
    name: str
    description: str = ""
    segment_type: SegmentType = "rule"
    definition: dict[str, Any] | None = None
    active: bool = True
    version: int = 0
    created_at: datetime = Field(default_factory=clock.now)
    updated_at: datetime = Field(default_factory=clock.now)
    created_by: str | None = None


class SegmentVersion(BaseModel):
    segment_id: int
    version: int
    definition: dict[str, Any]
    created_at: datetime = Field(default_factory=clock.now)
    created_by: str | None = None
    prompt: str | None = None  # the natural-language prompt an `ai` segment's definition was drafted from


class ComputeState(BaseModel):
    segment_id: int
    compute_id: str | None = None
    status: ComputeStatus | None = None
    mode: Literal["full", "delta"] | None = None
    error: str | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    computed_at: datetime | None = None
    last_computed_at: datetime | None = None
    member_count: int | None = None
    entered_count: int | None = None
    exited_count: int | None = None
    duration_ms: float | None = None
    definition_version: int | None = None
    # Set by segment_compute: the published membership version (`segops.membership.store`), and the
    # warehouse time from which the next delta compute must look for newly arrived events.
    snapshot: int | None = None
    watermark: datetime | None = None
