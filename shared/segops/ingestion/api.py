"""Ingestion HTTP routes: `track` and `track_batch` functions; stats and errors in the `api` function."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, RootModel

from segops.errors import PayloadTooLarge
from segops.http.routing import RequestContext, Result, Router, read_body
from segops.ingestion import intake
from segops.ingestion.error_log import recent_errors
from segops.ingestion.events import EventBatchRequest, IncomingEvent
from segops.ingestion.segment import MESSAGE_TYPES, MessageType
from segops.ingestion.stats import IngestionStats, Window, ingestion_stats

track_router = Router(tags=["ingestion"])
segment_router = Router(tags=["segment-compatible ingestion"])
batch_router = Router(tags=["ingestion"])
stats_router = Router(tags=["ingestion"])


class Queued(BaseModel):
    queued: bool


class BatchQueued(BaseModel):
    queued: int
    skipped: int


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window: Window = "24h"


class ErrorsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=100)


class IngestionErrorOut(BaseModel):
    ts: datetime
    error_type: str
    detail: str


class IngestionErrorList(RootModel[list[IngestionErrorOut]]):
    """Newest first."""


def _read(ctx: RequestContext, limit: int) -> bytes:
    try:
        return read_body(ctx, limit)
    except PayloadTooLarge as exc:
        raise intake.refuse_too_large(ctx.runtime, ctx.tenant_id, "api", exc) from None


@track_router.post(
    "/api/ingestion/track/",
    auth=("api_key",),
    role="member",
    status=202,
    response=Queued,
    stream_body=True,
    doc_body=IncomingEvent,
    browser=True,
)
def track(ctx: RequestContext) -> Result:
    """Queue one event (202); an invalid event is refused with 400 and recorded."""
    intake.accept_track(ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_TRACK_BODY_BYTES))
    return Result({"queued": True}, status=202)


@batch_router.post(
    "/api/ingestion/track/batch/",
    auth=("api_key",),
    role="member",
    status=202,
    response=BatchQueued,
    stream_body=True,
    doc_body=EventBatchRequest,
    browser=True,
)
def track_batch(ctx: RequestContext) -> Result:
    """Queue up to 500 events; invalid ones are skipped, counted and recorded."""
    outcome = intake.accept_batch(ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_BATCH_BODY_BYTES))
    return Result({"queued": outcome.queued, "skipped": outcome.skipped}, status=202)


@stats_router.get("/api/ingestion/stats/", role="viewer", query=StatsQuery, response=IngestionStats)
def stats(ctx: RequestContext) -> IngestionStats:
    """Totals, unique users, per-bucket counts and event types over the window (by receive time)."""
    query: StatsQuery = ctx.query
    return ingestion_stats(ctx.runtime, ctx.tenant_id, query.window)


@stats_router.get("/api/ingestion/errors/", role="viewer", query=ErrorsQuery, response=IngestionErrorList)
def errors(ctx: RequestContext) -> IngestionErrorList:
    """The most recent ingestion error records (default 50, at most 100), newest first."""
    query: ErrorsQuery = ctx.query
    return IngestionErrorList.model_validate(recent_errors(ctx.runtime, ctx.tenant_id, query.limit))


class SegmentAccepted(BaseModel):
    """What Segment's clients expect from the tracking API."""

    success: bool


def _segment_call(kind: MessageType) -> None:
    def handler(ctx: RequestContext) -> Result:
        intake.accept_segment_call(ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_TRACK_BODY_BYTES), kind)
        return Result({"success": True})

    handler.__name__ = f"segment_{kind}"
    handler.__doc__ = f"Segment `{kind}` call, mapped to one event (docs/ingestion.md); 400 when refused."
    segment_router.post(
        f"/v1/{kind}", auth=("write_key",), role="member", response=SegmentAccepted, stream_body=True, browser=True
    )(handler)


for _kind in MESSAGE_TYPES:
    _segment_call(_kind)


def _segment_batch(ctx: RequestContext) -> Result:
    intake.accept_segment_batch(ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_BATCH_BODY_BYTES))
    return Result({"success": True})


@segment_router.post(
    "/v1/batch", auth=("write_key",), role="member", response=SegmentAccepted, stream_body=True, browser=True
)
def segment_batch(ctx: RequestContext) -> Result:
    """Segment batch of up to 500 messages; invalid ones are skipped and recorded, as natively."""
    return _segment_batch(ctx)


@segment_router.post(
    "/v1/import", auth=("write_key",), role="member", response=SegmentAccepted, stream_body=True, browser=True
)
def segment_import(ctx: RequestContext) -> Result:
    """Segment's historical import: the same as `/v1/batch`."""
    return _segment_batch(ctx)
