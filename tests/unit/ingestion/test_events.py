"""Edge validation and the EventBatch wire encoding."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segops.ingestion.events import (
    MAX_PAYLOAD_BYTES,
    Rejection,
    Stamp,
    assign_random_ids,
    encode_batch,
    event_id_for,
    validate_event,
)
from segops.messages import EventBatch

STAMP = Stamp(tenant_id=7, received_at=datetime(2026, 4, 25, 12, 0, tzinfo=UTC), source="api")


def test_valid_event_becomes_a_tracked_event() -> None:
    raw = {"user_id": "u1", "event_type": "order_placed", "occurred_at": "2026-04-25T10:00:00Z", "payload": {"a": 1}}
    checked = validate_event(raw, STAMP)
    assert isinstance(checked, dict)
    assign_random_ids([checked])
    [event] = EventBatch.model_validate_json(encode_batch([checked])).events
    assert (event.tenant_id, event.user_id, event.event_type) == (7, "u1", "order_placed")
    assert event.occurred_at == datetime(2026, 4, 25, 10, tzinfo=UTC)
    assert event.received_at == STAMP.received_at
    assert event.payload == {"a": 1}
    assert event.event_id.version == 4


def test_message_id_gives_a_deterministic_per_tenant_event_id() -> None:
    checked = validate_event({"user_id": "u", "event_type": "e", "message_id": "m-1"}, STAMP)
    assert isinstance(checked, dict)
    assert checked["event_id"] == str(event_id_for(7, "m-1"))
    assert event_id_for(7, "m-1") != event_id_for(8, "m-1")


def test_payload_limit_is_measured_on_the_serialised_json() -> None:
    overhead = len(orjson.dumps({"b": ""}))
    exact = {"b": "x" * (MAX_PAYLOAD_BYTES - overhead)}
    assert isinstance(validate_event({"user_id": "u", "event_type": "e", "payload": exact}, STAMP), dict)
    over = {"b": "x" * (MAX_PAYLOAD_BYTES - overhead + 1)}
    rejected = validate_event({"user_id": "u", "event_type": "e", "payload": over}, STAMP)
    assert isinstance(rejected, Rejection) and rejected.error_type == "payload_too_large"


@pytest.mark.parametrize(
    ("occurred_at", "ok"),
    [
        ((STAMP.received_at + timedelta(hours=23, minutes=59)).isoformat(), True),
        ((STAMP.received_at + timedelta(hours=24, seconds=1)).isoformat(), False),
        ("1899-12-31T23:59:59Z", False),
        ("2026-04-25", True),
        ("not a date", False),
    ],
)
def test_occurred_at_bounds(occurred_at: str, ok: bool) -> None:
    checked = validate_event({"user_id": "u", "event_type": "e", "occurred_at": occurred_at}, STAMP)
    assert isinstance(checked, dict) is ok


def test_big_integers_in_payloads_stay_exact() -> None:
    body = b'{"user_id": "u", "event_type": "e", "payload": {"id": 820982911946154508, "max": 18446744073709551615}}'
    checked = validate_event(orjson.loads(body), STAMP)
    assert isinstance(checked, dict)
    assign_random_ids([checked])
    event = orjson.loads(encode_batch([checked]))["events"][0]
    assert event["payload"] == {"id": 820982911946154508, "max": 18446744073709551615}


@settings(max_examples=60, deadline=None)
@given(user_id=st.text(max_size=300), event_type=st.text(max_size=20))
def test_validation_never_raises_and_accepts_exactly_the_contract(user_id: str, event_type: str) -> None:
    checked = validate_event({"user_id": user_id, "event_type": event_type}, STAMP)
    control = any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in user_id)
    valid = 1 <= len(user_id) <= 256 and not control and re.fullmatch(r"[a-z][a-z0-9_]{0,127}", event_type) is not None
    assert isinstance(checked, dict) is valid


def test_random_ids_are_unique_v4() -> None:
    events = [{"event_id": None} for _ in range(1000)]
    assign_random_ids(events)
    ids = {uuid.UUID(e["event_id"]) for e in events}
    assert len(ids) == 1000 and all(i.version == 4 for i in ids)
