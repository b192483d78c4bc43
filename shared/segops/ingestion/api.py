"""Ingestion HTTP routes: `track` and `track_batch` functions; stats and errors in the `api` function."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from segops.boundary import StrictModel
from segops.errors import PayloadTooLarge
from segops.http.requests import read_body
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.ingestion import intake
from segops.ingestion.error_log import recent_errors
from segops.ingestion.events import EventBatchRequest, IncomingEvent
from segops.ingestion.stats import IngestionStats, Window, ingestion_stats

track_router = Router("/api/ingestion/track", auth=("api_key",), role="member")
batch_router = Router("/api/ingestion/track/batch", auth=("api_key",), role="member")
stats_router = Router("/api/ingestion")


class Queued(BaseModel):
    queued: bool


class BatchQueued(BaseModel):
    queued: int
    skipped: int


class StatsQuery(StrictModel):
    window: Window = "24h"


MAX_ERRORS = 100


class ErrorsQuery(StrictModel):
    limit: int = Field(default=50, ge=1, description=f"default 50; a larger value is clamped to {MAX_ERRORS}")

    @field_validator("limit")
    @classmethod
    def _at_most_max(cls, value: int) -> int:
        # The public reference promises "up to 100 records": asking for more is not an error.
        return min(value, MAX_ERRORS)


class IngestionErrorOut(BaseModel):
    ts: datetime
    error_type: str
    detail: str


class IngestionErrorList(BaseModel):
    results: list[IngestionErrorOut] = Field(description="newest first")


def _read(ctx: RequestContext, limit: int) -> bytes:
    try:
        return read_body(ctx, limit)
    except PayloadTooLarge as exc:
        raise intake.refuse_too_large(ctx.runtime, ctx.tenant_id, "api", exc) from None


@track_router.post(
    "/",
    status=202,
    response=Queued,
    stream_body=True,
    doc_body=IncomingEvent,
)
def track(ctx: RequestContext) -> Result:
    """Queue one event (202); an invalid event is refused with 400 and recorded."""
    intake.accept_track(ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_TRACK_BODY_BYTES))
    return Result({"queued": True}, status=202)


@batch_router.post(
    "/",
    status=202,
    response=BatchQueued,
    stream_body=True,
    doc_body=EventBatchRequest,
)
def track_batch(ctx: RequestContext) -> Result:
    """Queue up to 500 events; invalid ones are skipped, counted and recorded."""
    outcome = intake.accept_batch(ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_BATCH_BODY_BYTES))
    return Result({"queued": outcome.queued, "skipped": outcome.skipped}, status=202)


@stats_router.get("/stats/", query=StatsQuery, response=IngestionStats)
def stats(ctx: RequestContext) -> IngestionStats:
    """Totals, unique users, per-bucket counts and event types over the window (by receive time)."""
    query: StatsQuery = ctx.query
    return ingestion_stats(ctx.runtime, ctx.tenant_id, query.window)


@stats_router.get("/errors/", query=ErrorsQuery, response=IngestionErrorList)
def errors(ctx: RequestContext) -> IngestionErrorList:
    """The most recent ingestion error records (default 50, at most 100), newest first."""
    query: ErrorsQuery = ctx.query
    return IngestionErrorList.model_validate({"results": recent_errors(ctx.runtime, ctx.tenant_id, query.limit)})
