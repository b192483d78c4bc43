"""Ingestion HTTP routes: `track` and `track_batch` functions; stats, property keys and errors in `api`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from segops.boundary import StrictModel
from segops.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from segops.event_type import EventType
from segops.http.requests import MALFORMED_ENCODING, read_body
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.ingestion import intake
from segops.ingestion.error_log import recent_errors
from segops.ingestion.events import EventBatchRequest, IncomingEvent
from segops.ingestion.properties import PropertyKeys, property_keys
from segops.ingestion.segment import MESSAGE_TYPES, MessageType
from segops.ingestion.stats import IngestionStats, Window, ingestion_stats

track_router = Router("/api/ingestion/track", auth=("api_key",), role="member")
batch_router = Router("/api/ingestion/track/batch", auth=("api_key",), role="member")
stats_router = Router("/api/ingestion")
# Segment's tracking API (`segment_compat` function): the write key is the HTTP Basic user name.
segment_router = Router("/v1", auth=("write_key",), role="member", browser=True)


class Queued(BaseModel):
    queued: bool


class BatchQueued(BaseModel):
    queued: int
    skipped: int


class StatsQuery(StrictModel):
    window: Window = "24h"


class PropertiesQuery(StrictModel):
    event_type: EventType | None = None


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


def _read(ctx: RequestContext, limit: int, source: str = "api") -> bytes:
    """The (decoded) body; a refusal of the body itself is recorded against the caller's tenant."""
    try:
        return read_body(ctx, limit)
    except PayloadTooLarge as exc:
        raise intake.refuse_body(ctx.runtime, ctx.tenant_id, source, "body_too_large", exc) from None
    except UnsupportedMediaType as exc:
        raise intake.refuse_body(ctx.runtime, ctx.tenant_id, source, "unsupported_encoding", exc) from None
    except ValidationFailed as exc:
        raise intake.refuse_body(ctx.runtime, ctx.tenant_id, source, MALFORMED_ENCODING, exc) from None


@track_router.post(
    "/",
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
    "/",
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


@stats_router.get("/stats/", query=StatsQuery, response=IngestionStats)
def stats(ctx: RequestContext) -> IngestionStats:
    """Totals, unique users, per-bucket counts and event types over the window (by receive time)."""
    query: StatsQuery = ctx.query
    return ingestion_stats(ctx.runtime, ctx.tenant_id, query.window)


@stats_router.get("/properties/", query=PropertiesQuery, response=PropertyKeys)
def properties(ctx: RequestContext) -> PropertyKeys:
    """Dotted property paths seen in recent payloads, per event type (suggestions for the rule builder)."""
    query: PropertiesQuery = ctx.query
    return property_keys(ctx.runtime, ctx.tenant_id, query.event_type)


@stats_router.get("/errors/", query=ErrorsQuery, response=IngestionErrorList)
def errors(ctx: RequestContext) -> IngestionErrorList:
    """The most recent ingestion error records (default 50, at most 100), newest first."""
    query: ErrorsQuery = ctx.query
    return IngestionErrorList.model_validate({"results": recent_errors(ctx.runtime, ctx.tenant_id, query.limit)})


class SegmentAccepted(BaseModel):
    """What Segment's clients expect from the tracking API."""

    success: bool


# analytics.js (analytics-next) posts to one-letter paths: `/v1/<first letter of the call>` and `/v1/b`.
_BROWSER_PATHS: dict[str, MessageType] = {kind[0]: kind for kind in MESSAGE_TYPES}


def _segment_call(kind: MessageType, path: str) -> None:
    def handler(ctx: RequestContext) -> Result:
        raw = _read(ctx, intake.MAX_TRACK_BODY_BYTES, intake.SEGMENT_SOURCE)
        intake.accept_segment_call(ctx.runtime, ctx.tenant_id, raw, kind)
        return Result({"success": True})

    handler.__name__ = f"segment_{path}"
    handler.__doc__ = f"Segment `{kind}` call, mapped to one event (docs/ingestion.md); 400 when refused."
    segment_router.post(f"/{path}", response=SegmentAccepted, stream_body=True)(handler)


for _kind in MESSAGE_TYPES:
    _segment_call(_kind, _kind)
for _letter, _kind in _BROWSER_PATHS.items():
    _segment_call(_kind, _letter)


def _segment_batch(ctx: RequestContext) -> Result:
    intake.accept_segment_batch(
        ctx.runtime, ctx.tenant_id, _read(ctx, intake.MAX_BATCH_BODY_BYTES, intake.SEGMENT_SOURCE)
    )
    return Result({"success": True})


@segment_router.post("/batch", response=SegmentAccepted, stream_body=True)
def segment_batch(ctx: RequestContext) -> Result:
    """Segment batch of up to 500 messages; invalid ones are skipped and recorded, as natively."""
    return _segment_batch(ctx)


@segment_router.post("/b", response=SegmentAccepted, stream_body=True)
def segment_browser_batch(ctx: RequestContext) -> Result:
    """analytics.js's batch path: the same as `/v1/batch`."""
    return _segment_batch(ctx)


@segment_router.post("/import", response=SegmentAccepted, stream_body=True)
def segment_import(ctx: RequestContext) -> Result:
    """Segment's historical import: the same as `/v1/batch`."""
    return _segment_batch(ctx)
