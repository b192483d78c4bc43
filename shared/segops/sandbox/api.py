"""`POST /api/explorer/sandbox/publish/` (the `sandbox` function): what-if, nothing written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field, field_validator

from segops import clock
from segops.boundary import StrictModel, deeper_than
from segops.event_type import EventType
from segops.http.routes import RequestContext, Router
from segops.ingestion.events import (
    MAX_FUTURE,
    MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_DEPTH,
    MIN_OCCURRED_AT,
    UserId,
    parse_occurred_at,
)
from segops.metering.meter import meter_for
from segops.sandbox import service

router = Router("/api/explorer/sandbox", role="member")


class SandboxEvent(StrictModel):
    user_id: UserId = Field(
        description="An existing or hypothetical user id (the ingestion rule: 1-256 characters, no control characters)."
    )
    event_type: EventType
    occurred_at: datetime | None = Field(default=None, description="Defaults to now; naive means UTC.")
    payload: dict[str, Any] | None = Field(default=None, description="As ingestion: absent or null is `{}`.")
    tenant: int | str | None = None

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _read_as_ingestion_reads_it(cls, value: Any) -> Any:
        # The simulated event is one the edge would take: ISO 8601 text only (no epoch numbers).
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("occurred_at must be a string (an ISO 8601 timestamp)")
        parsed = parse_occurred_at(value)
        if parsed is None:
            raise ValueError("occurred_at is not an ISO 8601 timestamp")
        return parsed

    @field_validator("occurred_at")
    @classmethod
    def _within_ingestion_bounds(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = clock.as_utc(value)
        if value > clock.now() + MAX_FUTURE:
            raise ValueError("occurred_at is more than 24 h in the future")
        if value < MIN_OCCURRED_AT:
            raise ValueError("occurred_at is before 1900-01-01")
        return value

    @field_validator("payload")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        # The edge's bounds on a payload (the body's own depth bound keeps it writable by orjson).
        if value is None:
            return {}
        text = orjson.dumps(value)
        if len(text) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload exceeds {MAX_PAYLOAD_BYTES} bytes")
        if deeper_than(value, text, MAX_PAYLOAD_DEPTH):
            raise ValueError(f"payload nests more than {MAX_PAYLOAD_DEPTH} levels of objects and arrays")
        return value


class SegmentRef(BaseModel):
    id: int
    name: str


class SandboxResult(BaseModel):
    published: bool
    entered: list[SegmentRef]
    exited: list[SegmentRef]
    unchanged_count: int


@router.post("/publish/", body=SandboxEvent, response=SandboxResult)
def publish(ctx: RequestContext) -> SandboxResult:
    """Which active segments the user would enter or exit if this event happened; nothing is stored."""
    body: SandboxEvent = ctx.body
    delta = service.simulate(
        ctx.runtime,
        ctx.tenant_id,
        service.SimulatedEvent(
            user_id=body.user_id,
            event_type=body.event_type,
            occurred_at=body.occurred_at,
            payload=body.payload or {},
        ),
    )
    meter_for(ctx.runtime).count(ctx.tenant_id, "sandbox_calls")
    return SandboxResult(
        published=True,
        entered=[SegmentRef(id=s.id, name=s.name) for s in delta.entered],
        exited=[SegmentRef(id=s.id, name=s.name) for s in delta.exited],
        unchanged_count=delta.unchanged_count,
    )
