"""Bus message bodies, one pydantic model per message kind (the contracts between functions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from segops.boundary import StrictModel


class TrackedEvent(StrictModel):
    """A validated event, stamped by the HTTP function (topic `events`)."""

    tenant_id: int
    event_id: UUID
    message_id: str | None = None
    user_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
    source: str = "api"


class EventBatch(StrictModel):
    """One message on `events` per accepted request (track: one event; batch: up to 500)."""

    events: list[TrackedEvent] = Field(min_length=1)


class UsersChanged(StrictModel):
    """Published by the event writer to `segment-compute` after a successful write."""

    kind: Literal["users_changed"] = "users_changed"
    tenant_id: int
    user_ids: list[str]
    watermark: datetime
    # The latest `occurred_at` of these events when it is after their receipt (a client clock ahead,
    # a scheduled event): a compute before then does not count them yet, so one is due at that time.
    effective_at: datetime | None = None


class ComputeRequested(StrictModel):
    """`POST /api/segments/<id>/compute/` (and debounced notices) → `segment-compute`."""

    kind: Literal["compute"] = "compute"
    tenant_id: int
    segment_id: int
    compute_id: str
    mode: Literal["full", "delta"] = "full"
    requested_at: datetime


class ScheduledTick(StrictModel):
    """Cloud Scheduler (a timer in `make dev`) → `segment-compute`: catch time-window flips.

    The scheduler's own tick has no tenant; its handler publishes one tick per tenant, so each
    tenant's computes run in their own function invocation."""

    kind: Literal["scheduled"] = "scheduled"
    tenant_id: int | None = None


class DrainRequested(StrictModel):
    """A compute holder that ran out of its time budget with work left → `segment-compute`: carry on."""

    kind: Literal["drain"] = "drain"
    tenant_id: int


SegmentComputeMessage = Annotated[
    UsersChanged | ComputeRequested | ScheduledTick | DrainRequested, Field(discriminator="kind")
]


class SegmentComputeEnvelope(StrictModel):
    message: SegmentComputeMessage


class MembershipChanged(StrictModel):
    """One compute's diff, published to `membership-changes`. The diff rows themselves stay in
    ClickHouse (`membership_changes`, keyed by compute id) so a message never outgrows Pub/Sub."""

    tenant_id: int
    segment_id: int
    compute_id: str
    computed_at: datetime
    entered_count: int
    exited_count: int


class ConnectorSyncRequested(StrictModel):
    """A full sync of one connector (first activation or `POST /api/connectors/<id>/sync/`) → `connector-syncs`."""

    tenant_id: int
    connector_id: int
    sync_id: int
    requested_at: datetime


class ExportRequested(StrictModel):
    """`POST /api/segments/<id>/export/` → `segment-exports`."""

    tenant_id: int
    segment_id: int
    export_id: int
    format: Literal["csv", "parquet"]
