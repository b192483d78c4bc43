"""The HTTP side of ingestion: parse, validate, stamp, record refusals, publish one `EventBatch`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segops import clock
from segops.boundary import BadJson, loads
from segops.bus.base import Topic
from segops.errors import DependencyDown, QuotaExceeded, SegOpsError, ValidationFailed
from segops.ingestion import segment
from segops.ingestion.error_log import ErrorRecord, record_errors
from segops.ingestion.events import (
    Rejection,
    Stamp,
    assign_event_ids,
    encode_batch,
    validate_event,
    validate_events,
)
from segops.limits import quotas
from segops.runtime import Runtime

MAX_BATCH_EVENTS = 500
# One event carries ≤ 32 KiB of payload; a batch body stays far below Pub/Sub's 10 MB message limit
# once stamped (ids and timestamps add ~200 bytes per event, re-serialised JSON is never longer).
MAX_TRACK_BODY_BYTES = 256 * 1024
MAX_BATCH_BODY_BYTES = 5 * 1024 * 1024
# Errors and stats of the Segment-compatible endpoints carry this source.
SEGMENT_SOURCE = "segment"


@dataclass(frozen=True)
class BatchOutcome:
    queued: int
    skipped: int


class RequestRefused(ValidationFailed):
    """A whole request refused before any event was looked at (recorded with `error_type`)."""

    def __init__(self, error_type: str, message: str, pointer: str = "") -> None:
        super().__init__(message, {"errors": [{"pointer": pointer, "message": message, "type": error_type}]})
        self.error_type = error_type


def refuse_body(runtime: Runtime, tenant_id: int, source: str, error_type: str, exc: SegOpsError) -> SegOpsError:
    """Record a body refused before it was parsed (too large, badly encoded); the error to raise."""
    record_errors(runtime, tenant_id, source, [ErrorRecord(error_type, exc.message)])
    return exc


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise RequestRefused("invalid_json", "request body is empty; expected a JSON object")
    try:
        return loads(raw)
    except BadJson as bad:
        raise RequestRefused("invalid_json", str(bad)) from None


def publish_events(runtime: Runtime, tenant_id: int, events: list[dict[str, Any]], source: str) -> None:
    """One message on `events` for the whole request; 503 if the bus does not take it (client retries).
    Counted against the monthly quota first: 429 `quota_exceeded` publishes none of them."""
    assign_event_ids(events)
    try:
        counter = quotas.reserve_events(runtime, tenant_id, len(events))
    except QuotaExceeded as refused:
        # Recorded where a tenant looks for what was refused (a Shopify webhook's 429 is seen by no
        # one else); one row per request, and not a refused event on the bill (a 429 costs nothing).
        detail = f"{len(events)} event(s) refused: {refused.message}"
        record_errors(runtime, tenant_id, source, [ErrorRecord("quota_exceeded", detail)], metered=False)
        raise
    try:
        runtime.bus.publish(
            Topic.EVENTS,
            encode_batch(events),
            {"tenant_id": str(tenant_id), "source": source, "event_count": str(len(events))},
        )
    except Exception as exc:
        quotas.release_events(runtime, counter, len(events))
        raise DependencyDown("event bus unavailable, retry later", {"dependency": "pubsub"}) from exc


def accept_track(runtime: Runtime, tenant_id: int, raw: bytes, source: str = "api") -> None:
    """`POST /api/ingestion/track/`: one event, queued or refused (400 with the field error)."""
    stamp = Stamp(tenant_id, clock.now(), source)
    try:
        body = parse_body(raw)
        checked = validate_event(body, stamp)
        if isinstance(checked, Rejection):
            raise RequestRefused(checked.error_type, checked.detail, checked.pointer)
    except RequestRefused as refused:
        record_errors(runtime, tenant_id, source, [ErrorRecord(refused.error_type, refused.message)], stamp.received_at)
        raise
    publish_events(runtime, tenant_id, [checked], source)


def _batch_items(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise RequestRefused("invalid_body", "request body must be a JSON object with an `events` array")
    unknown = sorted(set(body) - {"events"})
    if unknown:
        raise RequestRefused(
            "invalid_body", f'unknown field {unknown[0]!r}; a batch is {{"events": [...]}}', "/" + unknown[0]
        )
    return _bounded_list(body, "events")


def _bounded_list(body: dict[str, Any], field: str) -> list[Any]:
    """`body[field]`, which must be an array of at most `MAX_BATCH_EVENTS` items."""
    items = body.get(field)
    if not isinstance(items, list):
        raise RequestRefused("invalid_body", f"`{field}` is required and must be an array", "/" + field)
    if len(items) > MAX_BATCH_EVENTS:
        raise RequestRefused(
            "batch_too_large", f"a batch holds at most {MAX_BATCH_EVENTS} events, got {len(items)}", "/" + field
        )
    return items


def accept_batch(runtime: Runtime, tenant_id: int, raw: bytes, source: str = "api") -> BatchOutcome:
    """`POST /api/ingestion/track/batch/`: valid events queued, invalid ones skipped and recorded."""
    stamp = Stamp(tenant_id, clock.now(), source)
    try:
        items = _batch_items(parse_body(raw))
    except RequestRefused as refused:
        record_errors(runtime, tenant_id, source, [ErrorRecord(refused.error_type, refused.message)], stamp.received_at)
        raise
    return _queue_valid(runtime, stamp, validate_events(items, stamp))


def _queue_valid(
    runtime: Runtime, stamp: Stamp, checked: list[dict[str, Any] | Rejection], array: str = "events"
) -> BatchOutcome:
    """Record the refused events of a batch (named by their place in the body's `array`), publish the
    valid ones (one message)."""
    accepted: list[dict[str, Any]] = []
    refused_events: list[ErrorRecord] = []
    for index, item in enumerate(checked):
        if isinstance(item, Rejection):
            refused_events.append(ErrorRecord(item.error_type, f"{array}[{index}] {item.detail}"))
        else:
            accepted.append(item)
    record_errors(runtime, stamp.tenant_id, stamp.source, refused_events, stamp.received_at)
    if accepted:
        publish_events(runtime, stamp.tenant_id, accepted, stamp.source)
    return BatchOutcome(queued=len(accepted), skipped=len(refused_events))


def accept_segment_call(runtime: Runtime, tenant_id: int, raw: bytes, kind: segment.MessageType) -> None:
    """`POST /v1/<kind>`: one Segment message, queued or refused (400 with the field error)."""
    stamp = Stamp(tenant_id, clock.now(), SEGMENT_SOURCE)
    try:
        body = parse_body(raw)
        checked = segment.validate_message(body, kind, None, stamp)
        if isinstance(checked, Rejection):
            raise RequestRefused(checked.error_type, checked.detail, checked.pointer)
    except RequestRefused as refused:
        record_errors(
            runtime, tenant_id, stamp.source, [ErrorRecord(refused.error_type, refused.message)], stamp.received_at
        )
        raise
    publish_events(runtime, tenant_id, [checked], stamp.source)


def accept_segment_batch(runtime: Runtime, tenant_id: int, raw: bytes) -> BatchOutcome:
    """`POST /v1/batch` and `/v1/import`: like the native batch; the messages name their own `type`."""
    stamp = Stamp(tenant_id, clock.now(), SEGMENT_SOURCE)
    try:
        body = parse_body(raw)
        if not isinstance(body, dict):
            raise RequestRefused("invalid_body", "request body must be a JSON object with a `batch` array")
        items = _bounded_list(body, "batch")
    except RequestRefused as refused:
        record_errors(
            runtime, tenant_id, stamp.source, [ErrorRecord(refused.error_type, refused.message)], stamp.received_at
        )
        raise
    return _queue_valid(runtime, stamp, segment.validate_batch(items, body.get("sentAt"), stamp), "batch")
