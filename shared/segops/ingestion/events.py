"""The event contract of docs/design.md §7: validation at the edge, stamping, and the `EventBatch` wire encoding.

Hot path: a 500-event batch is checked one event at a time (invalid events are skipped, not fatal).
A valid event is vouched for by a few plain-Python checks of the same contract (`_vouched`); anything
it cannot vouch for goes through the pydantic model, which stays the single source of refusals. Each
payload is serialised once with orjson (its size is the 32 KiB check) and embedded as an
`orjson.Fragment`, so the outgoing `EventBatch` is encoded without walking payloads twice.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from hashlib import sha1
from typing import Annotated, Any

import orjson
from pydantic import Field, StringConstraints, ValidationError

from segops.boundary import StrictModel, deeper_than, json_depth
from segops.event_type import EVENT_TYPE_PATTERN, EventType, is_event_type

MAX_USER_ID_CHARS = 256
MAX_MESSAGE_ID_CHARS = 256
MAX_PAYLOAD_BYTES = 32 * 1024
# Levels of objects and arrays in a payload (`{"a": 1}` is one): far more than any event needs, and
# well under what the stages that read a payload again can take (orjson writes at most 254 levels;
# pydantic's JSON parser, the writer's path for a message in another spelling, reads ~200).
MAX_PAYLOAD_DEPTH = 64
MAX_FUTURE = timedelta(hours=24)
# DateTime64(3) holds 1900-01-01 .. 2299-12-31; anything earlier is a client bug, not history.
MIN_OCCURRED_AT = datetime(1900, 1, 1, tzinfo=UTC)
# Unicode category Cc: C0 controls, DEL and C1 controls.
NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f-\x9f]*$"
# What a user id may be wherever one arrives (ingestion, the sandbox): the same rule everywhere, so a
# what-if never names a user that ingestion would refuse.
UserId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=NO_CONTROL_CHARS)]
# Deterministic event ids for client message ids: uuid5(namespace, "<tenant>:<message_id>").
EVENT_ID_NAMESPACE = uuid.UUID("5d0f7a52-6a3b-4c61-9a0e-4f1c2b7d9e10")
FIELDS = ("user_id", "event_type", "occurred_at", "payload", "message_id")


class IncomingEvent(StrictModel):
    """One event as a client sends it (`POST /api/ingestion/track/`, one item of a batch)."""

    user_id: UserId = Field(description="Your unique user identifier (1-256 characters, no control characters).")
    event_type: EventType = Field(description="Snake-case event name, e.g. page_viewed.")
    occurred_at: str | None = Field(
        default=None, description="ISO 8601 timestamp (naive = UTC); defaults to receive time; ≤ 24 h ahead."
    )
    payload: dict[str, Any] | None = Field(default=None, description="Arbitrary properties, ≤ 32 KiB as JSON.")
    message_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_ID_CHARS, pattern=NO_CONTROL_CHARS)]
        | None
    ) = Field(
        default=None,
        description="Client idempotency key: a retry with it within the dedup horizon (7 days by default) "
        "of the first is counted once.",
    )


class EventBatchRequest(StrictModel):
    """`POST /api/ingestion/track/batch/` (documentation model; items are validated one by one)."""

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
    """Canonical wire form of an aware timestamp: UTC, milliseconds (`2026-04-25T14:32:00.000+00:00`).
    On the hot path (a skew-corrected time per Segment message), so the whole seconds are formatted
    once per distinct second and the rest is looked up: an aware `isoformat` costs ~5x this, and
    `timedelta // timedelta` or a `:03d` format spec each cost more than all of it."""
    since = value - _EPOCH  # normalised: days may be negative, seconds and microseconds never are
    return _utc_second(since.days * 86400 + since.seconds) + _MILLIS_UTC[since.microseconds // 1000]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLIS_UTC = tuple(f".{millis:03d}+00:00" for millis in range(1000))


@lru_cache(maxsize=4096)  # live traffic's events fall within a few minutes of each other
def _utc_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()[:19]


def event_id_for(tenant_id: int, message_id: str) -> uuid.UUID:
    """The same (tenant, message_id) always maps to the same event id: retries collapse onto one row."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{tenant_id}:{message_id}")


_validate = IncomingEvent.model_validate
_FIELD_SET = frozenset(FIELDS)
_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")

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
            return f"event_type: must be snake_case matching {EVENT_TYPE_PATTERN}"
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
    """ISO 8601 (a trailing `Z`, offsets, fractions, date-only); naive means UTC. None if unparsable.
    RFC 3339's lower-case `t` and `z` are read too (`datetime.fromisoformat` takes upper case only)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.upper())
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
    return _stamped(event.user_id, event.event_type, event.occurred_at, event.payload, event.message_id, stamp, pointer)


def validate_events(items: list[Any], stamp: Stamp) -> list[dict[str, Any] | Rejection]:
    """`validate_event` for each item of a parsed JSON batch; valid items take the `_vouched` fast path."""
    checked: list[dict[str, Any] | Rejection] = []
    for index, item in enumerate(items):
        vouched = _vouched(item, stamp)
        checked.append(vouched if vouched is not None else validate_event(item, stamp, f"/events/{index}"))
    return checked


def _vouched(raw: Any, stamp: Stamp) -> dict[str, Any] | None:
    """The stamped event when `raw` (parsed from JSON: keys are strings) certainly satisfies
    `IncomingEvent` and the stamping rules; None when in any doubt, so that pydantic decides and
    words every refusal. Checks exactly the model's constraints, conservatively."""
    if type(raw) is not dict or not _FIELD_SET.issuperset(raw):
        return None
    occurred_at = raw.get("occurred_at")
    event_type = raw.get("event_type")
    payload = raw.get("payload")
    if (
        (occurred_at is not None and type(occurred_at) is not str)
        or type(event_type) is not str
        or not is_event_type(event_type)
        or (payload is not None and type(payload) is not dict)
    ):
        return None
    return vouch(raw.get("user_id"), event_type, occurred_at, payload, raw.get("message_id"), stamp)


def vouch(
    user_id: Any,
    event_type: str,
    occurred_at: str | None,
    payload: dict[str, Any] | None,
    message_id: Any,
    stamp: Stamp,
    parsed_at: datetime | None = None,
) -> dict[str, Any] | None:
    """`_vouched` for an event's fields whose `event_type` is a valid event type and `payload` a dict
    or None (the caller checked them, or made them): the stamped event when the rest certainly passes
    the model and the stamping rules, else None. `parsed_at`, when given, is `occurred_at` parsed, and
    `occurred_at` is already canonical (a mapping that computed the time itself need not print and
    parse it again)."""
    if (
        type(user_id) is not str
        or not 0 < len(user_id) <= MAX_USER_ID_CHARS
        or _CONTROL_CHAR.search(user_id)
        or (
            message_id is not None
            and (
                type(message_id) is not str
                or not 0 < len(message_id) <= MAX_MESSAGE_ID_CHARS
                or _CONTROL_CHAR.search(message_id)
            )
        )
    ):
        return None
    stamped = _stamped(user_id, event_type, occurred_at, payload, message_id, stamp, "", parsed_at)
    return None if isinstance(stamped, Rejection) else stamped


def _stamped(
    user_id: str,
    event_type: str,
    occurred_at: str | None,
    payload: dict[str, Any] | None,
    message_id: str | None,
    stamp: Stamp,
    pointer: str,
    parsed_at: datetime | None = None,
) -> dict[str, Any] | Rejection:
    if occurred_at is None:
        occurred = stamp.received_text
    else:
        parsed = parsed_at if parsed_at is not None else parse_occurred_at(occurred_at)
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
        occurred = occurred_at if parsed_at is not None else iso_millis(parsed)
    try:
        serialised = orjson.dumps(payload) if payload is not None else b"{}"
    except TypeError:  # orjson writes at most 254 levels; nothing else parsed from JSON fails it
        if json_depth(payload) <= MAX_PAYLOAD_DEPTH:
            raise
        return _too_deep(pointer)
    if len(serialised) > MAX_PAYLOAD_BYTES:
        return Rejection(
            "payload_too_large",
            f"payload: {len(serialised)} bytes as JSON, the limit is {MAX_PAYLOAD_BYTES}",
            f"{pointer}/payload",
        )
    if deeper_than(payload, serialised, MAX_PAYLOAD_DEPTH):
        return _too_deep(pointer)
    return {
        "tenant_id": stamp.tenant_id,
        "event_id": None,  # assign_event_ids, once per batch
        "message_id": message_id,
        "user_id": user_id,
        "event_type": event_type,
        "occurred_at": occurred,
        "received_at": stamp.received_text,
        "payload": orjson.Fragment(serialised),
        "source": stamp.source,
    }


def _too_deep(pointer: str) -> Rejection:
    return Rejection(
        "invalid_payload",
        f"payload: nests more than {MAX_PAYLOAD_DEPTH} levels of objects and arrays",
        f"{pointer}/payload",
    )


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


# Per-id masks for the version nibble and variant bits; repeated to mask a whole batch at once.
_ID_KEEP = bytes.fromhex("ffffffffffff0fff3fffffffffffffff")
_V4_BITS = bytes.fromhex("00000000000040008000000000000000")
_V5_BITS = bytes.fromhex("00000000000050008000000000000000")
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
# Where each of an id's 32 hex digits goes in its 36-character text (8-4-4-4-12).
_DIGIT_OFFSETS = tuple(offset for offset in range(36) if offset not in (8, 13, 18, 23))


def assign_event_ids(events: list[dict[str, Any]]) -> None:
    """Give every event of a batch its id, all at once: events with a client message id get
    `event_id_for(tenant, message_id)` (a retry maps onto the same row), the others a random RFC 4122
    v4 id drawn in one syscall for the batch."""
    derived = [e for e in events if e["message_id"] is not None]
    drawn = [e for e in events if e["message_id"] is None]
    if derived:
        names = (_NAMESPACE_BYTES + f"{e['tenant_id']}:{e['message_id']}".encode() for e in derived)
        digests = b"".join(sha1(name, usedforsecurity=False).digest()[:16] for name in names)  # uuid5's hash
        for event, text in zip(derived, _id_texts(digests, _V5_BITS), strict=True):
            event["event_id"] = text
    if drawn:
        for event, text in zip(drawn, _id_texts(os.urandom(16 * len(drawn)), _V4_BITS), strict=True):
            event["event_id"] = text


def _id_texts(raw: bytes, version_bits: bytes) -> list[str]:
    """16-byte ids → canonical UUID texts with the version and variant bits set: two big-integer
    operations and 32 strided copies for the whole batch instead of a formatted string per id."""
    count = len(raw) // 16
    keep, bits = int.from_bytes(_ID_KEEP * count, "big"), int.from_bytes(version_bits * count, "big")
    digits = ((int.from_bytes(raw, "big") & keep) | bits).to_bytes(16 * count, "big").hex().encode()
    text = bytearray(b"-" * (36 * count))
    for source, offset in enumerate(_DIGIT_OFFSETS):
        text[offset::36] = digits[source::32]
    joined = text.decode()
    return [joined[start : start + 36] for start in range(0, 36 * count, 36)]


def encode_batch(events: Iterable[dict[str, Any]]) -> bytes:
    """The `EventBatch` message body (segops.messages) for already validated, stamped events."""
    return orjson.dumps({"events": list(events)})
