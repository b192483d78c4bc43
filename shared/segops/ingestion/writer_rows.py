"""`EventBatch` messages → the event writer's rows, without a pydantic object per event.

Messages on `events` are written by our own HTTP functions (`events.encode_batch`: every field, ids
and times in canonical spelling, each payload the compact JSON orjson wrote of a parsed object), so a
message is decoded into typed fields by msgspec with each payload left as its JSON text, and its
events are checked by a handful of plain-Python tests of exactly what `EventBatch` accepts,
conservatively (`read_batch`). Anything those tests cannot vouch for (another time or id spelling, a
missing field, a malformed or poison message) goes through the model (`parse_message(..., EventBatch)`),
which stays the judge of every field but the payload. A payload is stored as the text the message
carries when that text is a JSON object: the same text the model's path would write for every message
the edge publishes; a differential test checks the two agree on every other message too, the payload
as a JSON value. Measured per event (docs/performance.md): the model and rows built from its objects
~3.9 µs, the earlier `read_batch` (pydantic-core's parser, each payload parsed and written again)
~3.6 µs, this one ~1.6 µs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
import orjson

from segops.clock import as_utc
from segops.messages import TrackedEvent


class WriterEvent(NamedTuple):
    """An event as the writer stores it: its `events` row (the first eight fields, `writer.COLUMNS`
    order: the id as canonical UUID text, no message id as "", the payload as JSON text), then its source."""

    tenant_id: int
    event_id: str
    message_id: str
    user_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    payload: str
    source: str


def writer_events(events: Sequence[TrackedEvent]) -> list[WriterEvent]:
    """The writer's form of events parsed by the model, times in UTC (a naive time is UTC, as the
    `events` columns read it), so that one flush can compare the times of every message it holds."""
    return [
        WriterEvent(
            e.tenant_id,
            str(e.event_id),
            e.message_id or "",
            e.user_id,
            e.event_type,
            as_utc(e.occurred_at),
            as_utc(e.received_at),
            payload_text(e.payload),
            e.source,
        )
        for e in events
    ]


def payload_text(payload: dict[str, Any]) -> str:
    """A parsed payload as compact JSON text. orjson writes no integer beyond 64 bits, which the model
    accepts (and `read_batch` keeps as its message's text): such a payload is written by the standard
    library instead, a non-finite float as null as orjson writes it, so that every spelling of a
    message stores the same JSON value."""
    try:
        return orjson.dumps(payload).decode()
    except TypeError:
        return json.dumps(_finite(payload), ensure_ascii=False, separators=(",", ":"))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


# The edge writes every field of every event; an event without one (the model has defaults) goes to the model.
_FIELDS = frozenset(TrackedEvent.model_fields)


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    """A `TrackedEvent` as the edge writes it: every field present, with its exact JSON type."""

    tenant_id: int
    event_id: str
    message_id: str | None
    user_id: str
    event_type: str
    occurred_at: str
    received_at: str
    payload: msgspec.Raw
    source: str


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: list[_Event]


assert frozenset(_Event.__struct_fields__) == _FIELDS, "writer_rows._Event must name TrackedEvent's fields"
_decode = msgspec.json.Decoder(_Batch).decode

# What `events.iso_millis` and `str(uuid)` write; other spellings the model accepts go to the model.
# Checked once per message over the joined texts (one regex call instead of two per event).
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CANONICAL_TIMES = re.compile(rf"{_TIME}(?:,{_TIME})*")
_CANONICAL_IDS = re.compile(rf"{_ID}(?:,{_ID})*")
# Each token with its comma: a message's joined texts are this times its events, less one.
_TIME_LENGTH = len("2026-01-01T00:00:00.000+00:00,")
_ID_LENGTH = len("00000000-0000-0000-0000-000000000000,")
# `WriterEvent(...)` without its Python-level `__new__` (a named tuple is built by `tuple.__new__`).
_new_event = tuple.__new__


def read_batch(data: bytes) -> list[WriterEvent] | None:
    """The events of an `EventBatch` message when `EventBatch` certainly accepts it, with the values the
    model would give them and each payload as its message's JSON text; None when in any doubt (the
    caller then parses it with the model)."""
    try:
        # Strict types (an int is a JSON integer, never a bool or a float); the payloads are only
        # scanned, as JSON, not built into Python objects.
        items = _decode(data).events
    except msgspec.DecodeError:
        return None
    if not items:
        return None
    events: list[WriterEvent] = []
    times: list[str] = []
    # One request's events share its receive time: parsed once per distinct text. The first event
    # always sets it (no text equals None); the placeholder is never stored.
    received_text: str | None = None
    received = datetime.min
    parse_time = datetime.fromisoformat
    for item in items:
        payload = item.payload
        try:
            occurred = parse_time(item.occurred_at)
            if item.received_at != received_text:
                if not _CANONICAL_TIMES.fullmatch(item.received_at):
                    return None
                received, received_text = parse_time(item.received_at), item.received_at
            # The raw text is valid JSON but not checked as UTF-8 (the model's parser refuses it).
            text = str(payload, "utf-8")
        except ValueError:  # a date the calendar does not have (the model words it), or not UTF-8
            return None
        if not text.startswith("{"):  # the model's payload is an object
            return None
        times.append(item.occurred_at)
        event = (
            item.tenant_id,
            item.event_id,
            item.message_id or "",
            item.user_id,
            item.event_type,
            occurred,
            received,
            text,
            item.source,
        )
        events.append(_new_event(WriterEvent, event))
    # The lengths make each text exactly one token (a text with a comma in it would count as two).
    ids = ",".join([event.event_id for event in events])
    if len(ids) != _ID_LENGTH * len(events) - 1 or not _CANONICAL_IDS.fullmatch(ids):
        return None
    occurred_texts = ",".join(times)
    if len(occurred_texts) != _TIME_LENGTH * len(times) - 1 or not _CANONICAL_TIMES.fullmatch(occurred_texts):
        return None
    return events
