"""The event contract of DESIGN §7: validation at the edge, stamping, and the `EventBatch` wire encoding.

Hot path: a 500-event batch is validated one event at a time (invalid events are skipped, not fatal),
each payload is serialised once with orjson (its size is the 32 KiB check) and embedded as a
`orjson.Fragment`, so the outgoing `EventBatch` is encoded without walking payloads twice.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

MAX_USER_ID_CHARS = 256
MAX_MESSAGE_ID_CHARS = 256
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_FUTURE = timedelta(hours=24)
# DateTime64(3) holds 1900-01-01 .. 2299-12-31; anything earlier is a client bug, not history.
MIN_OCCURRED_AT = datetime(1900, 1, 1, tzinfo=UTC)
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,127}$"
# Unicode category Cc: C0 controls, DEL and C1 controls.
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Deterministic event ids for client message ids: uuid5(namespace, "<tenant>:<message_id>").
EVENT_ID_NAMESPACE = uuid.UUID("5d0f7a52-6a3b-4c61-9a0e-4f1c2b7d9e10")
FIELDS = ("user_id", "event_type", "occurred_at", "payload", "message_id")


class IncomingEvent(BaseModel):
    """One event as a client sends it (`POST /api/ingestion/track/`, one item of a batch)."""

    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=NO_CONTROL_CHARS)] = (
        Field(description="Your unique user identifier (1-256 characters, no control characters).")
    )
    event_type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)] = Field(
        description="Snake-case event name, e.g. page_viewed."
    )
    occurred_at: str | None = Field(
        default=None, description="ISO 8601 timestamp (naive = UTC); defaults to receive time; ≤ 24 h ahead."
    )
    payload: dict[str, Any] | None = Field(default=None, description="Arbitrary properties, ≤ 32 KiB as JSON.")
    message_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_ID_CHARS, pattern=NO_CONTROL_CHARS)]
        | None
    ) = Field(default=None, description="Client idempotency key: retries with it are counted once.")


class EventBatchRequest(BaseModel):
    """`POST /api/ingestion/track/batch/` (documentation model; items are validated one by one)."""

    model_config = ConfigDict(extra="forbid")

    events: list[IncomingEvent] = Field(max_length=500)


@dataclass(frozen=True)
class Rejection:
    """Why one event was refused: `error_type` is stable, `detail` names the field and the reason."""

    error_type: str
    detail: str
    pointer: str


@dataclass
class Stamp:
    """Per-request values shared by every event of one request."""

    tenant_id: int
    received_at: datetime
    source: str
    received_text: str = field(init=False)
    latest_allowed: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.received_text = iso_millis(self.received_at)
        self.latest_allowed = self.received_at + MAX_FUTURE


def iso_millis(value: datetime) -> str:
    """Canonical wire form of a timestamp: UTC, milliseconds (`2026-04-25T14:32:00.000+00:00`)."""
    if value.tzinfo is not UTC:  # `Z` and `+00:00` already parse to the UTC singleton
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")


def event_id_for(tenant_id: int, message_id: str) -> uuid.UUID:
    """The same (tenant, message_id) always maps to the same event id: retries collapse onto one row."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{tenant_id}:{message_id}")


_validate = IncomingEvent.model_validate
_validate_all = TypeAdapter(list[IncomingEvent]).validate_python

_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "dict_type": "must be a JSON object",
}


def _describe(field: str, error: Any) -> str:
    kind = error["type"]
    if kind == "string_too_long":
        return f"{field}: must be at most {error['ctx']['max_length']} characters"
    if kind == "string_pattern_mismatch":
        if field == "event_type":
            return "event_type: must be snake_case matching ^[a-z][a-z0-9_]{0,127}$"
        return f"{field}: must not contain control characters"
    return f"{field}: {_MESSAGES.get(kind, error['msg'])}"


def _rejection_from(exc: ValidationError, pointer: str) -> Rejection:
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = error["loc"]
    field = str(loc[0]) if loc else "event"
    if error["type"] == "extra_forbidden":
        return Rejection(
            "unknown_field", f"{field}: unknown field (allowed: {', '.join(FIELDS)})", f"{pointer}/{field}"
        )
    if field not in FIELDS:
        return Rejection("invalid_event", f"event: {error['msg']}", pointer)
    return Rejection(f"invalid_{field}", _describe(field, error), f"{pointer}/{field}")


def parse_occurred_at(text: str) -> datetime | None:
    """ISO 8601 (a trailing `Z`, offsets, fractions, date-only); naive means UTC. None if unparsable."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def validate_event(raw: Any, stamp: Stamp, pointer: str = "") -> dict[str, Any] | Rejection:
    """One client event → the `TrackedEvent` wire dict (payload pre-serialised), or why it is refused."""
    if not isinstance(raw, dict):
        return Rejection("invalid_event", f"event: must be a JSON object, got {_json_type(raw)}", pointer)
    try:
        event = _validate(raw)
    except ValidationError as exc:
        return _rejection_from(exc, pointer)
    return _stamped(event, stamp, pointer)


def validate_events(items: list[Any], stamp: Stamp) -> list[dict[str, Any] | Rejection]:
    """`validate_event` for each item of a batch; one pydantic call when every item has the right shape."""
    try:
        events = _validate_all(items)
    except ValidationError:
        return [validate_event(item, stamp, f"/events/{i}") for i, item in enumerate(items)]
    stamped = [_stamped(event, stamp, "") for event in events]
    # Pointers are only built for the rare refusals, not for every accepted event.
    return [
        Rejection(c.error_type, c.detail, f"/events/{i}{c.pointer}") if isinstance(c, Rejection) else c
        for i, c in enumerate(stamped)
    ]


def _stamped(event: IncomingEvent, stamp: Stamp, pointer: str) -> dict[str, Any] | Rejection:
    if event.occurred_at is None:
        occurred = stamp.received_text
    else:
        parsed = parse_occurred_at(event.occurred_at)
        if parsed is None:
            return Rejection("invalid_occurred_at", "occurred_at: not an ISO 8601 timestamp", f"{pointer}/occurred_at")
        if parsed > stamp.latest_allowed:
            return Rejection(
                "invalid_occurred_at",
                f"occurred_at: more than 24 h in the future (received at {stamp.received_text})",
                f"{pointer}/occurred_at",
            )
        if parsed < MIN_OCCURRED_AT:
            return Rejection("invalid_occurred_at", "occurred_at: before 1900-01-01", f"{pointer}/occurred_at")
        occurred = iso_millis(parsed)
    payload = orjson.dumps(event.payload) if event.payload is not None else b"{}"
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection(
            "payload_too_large",
            f"payload: {len(payload)} bytes as JSON, the limit is {MAX_PAYLOAD_BYTES}",
            f"{pointer}/payload",
        )
    message_id = event.message_id
    return {
        "tenant_id": stamp.tenant_id,
        "event_id": str(event_id_for(stamp.tenant_id, message_id)) if message_id is not None else None,
        "message_id": message_id,
        "user_id": event.user_id,
        "event_type": event.event_type,
        "occurred_at": occurred,
        "received_at": stamp.received_text,
        "payload": orjson.Fragment(payload),
        "source": stamp.source,
    }


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def assign_random_ids(events: list[dict[str, Any]]) -> None:
    """Events without a client message id get a random RFC 4122 v4 id, drawn in one syscall for the batch."""
    missing = [e for e in events if e["event_id"] is None]
    entropy = bytearray(os.urandom(16 * len(missing)))
    for offset in range(0, len(entropy), 16):
        entropy[offset + 6] = (entropy[offset + 6] & 0x0F) | 0x40  # version 4
        entropy[offset + 8] = (entropy[offset + 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = entropy.hex()
    for i, event in enumerate(missing):
        h = text[32 * i : 32 * i + 32]
        event["event_id"] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode_batch(events: Iterable[dict[str, Any]]) -> bytes:
    """The `EventBatch` message body (segops.messages) for already validated, stamped events."""
    return orjson.dumps({"events": list(events)})
