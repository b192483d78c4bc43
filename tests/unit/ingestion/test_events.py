"""Edge validation and the EventBatch wire encoding."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segops.ingestion.events import (
    MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_DEPTH,
    Rejection,
    Stamp,
    assign_event_ids,
    encode_batch,
    event_id_for,
    iso_millis,
    validate_event,
    validate_events,
)
from segops.messages import EventBatch

STAMP = Stamp(tenant_id=7, received_at=datetime(2026, 4, 25, 12, 0, tzinfo=UTC), source="api")


def test_valid_event_becomes_a_tracked_event() -> None:
    raw = {"user_id": "u1", "event_type": "order_placed", "occurred_at": "2026-04-25T10:00:00Z", "payload": {"a": 1}}
    checked = validate_event(raw, STAMP)
    assert isinstance(checked, dict)
    assign_event_ids([checked])
    [event] = EventBatch.model_validate_json(encode_batch([checked])).events
    assert (event.tenant_id, event.user_id, event.event_type) == (7, "u1", "order_placed")
    assert event.occurred_at == datetime(2026, 4, 25, 10, tzinfo=UTC)
    assert event.received_at == STAMP.received_at
    assert event.payload == {"a": 1}
    assert event.event_id.version == 4


def test_message_id_gives_a_deterministic_per_tenant_event_id() -> None:
    checked = validate_event({"user_id": "u", "event_type": "e", "message_id": "m-1"}, STAMP)
    assert isinstance(checked, dict)
    assign_event_ids([checked])
    assert checked["event_id"] == str(event_id_for(7, "m-1"))
    assert event_id_for(7, "m-1") != event_id_for(8, "m-1")


@settings(max_examples=100, deadline=None)
@given(
    batch=st.lists(
        st.tuples(st.integers(min_value=1, max_value=2**63 - 1), st.none() | st.text(min_size=1, max_size=40)),
        max_size=40,
    )
)
def test_batch_ids_are_uuid5_of_the_message_id_or_random_v4(batch: list[tuple[int, str | None]]) -> None:
    # GIVEN a batch mixing events with and without client message ids (any text, any tenant)
    events: list[dict[str, object]] = [
        {"tenant_id": tenant_id, "message_id": message_id, "event_id": None} for tenant_id, message_id in batch
    ]
    # WHEN the batch's ids are assigned at once
    assign_event_ids(events)
    # THEN each event with a message id has uuid5's canonical text for it, in its own place
    for (tenant_id, message_id), event in zip(batch, events, strict=True):
        if message_id is not None:
            assert event["event_id"] == str(event_id_for(tenant_id, message_id))
    # AND the others have distinct random v4 ids in canonical text
    drawn = [str(e["event_id"]) for (_, message_id), e in zip(batch, events, strict=True) if message_id is None]
    assert len(set(drawn)) == len(drawn)
    for text in drawn:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


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
        ("2026-04-25t10:00:00.123z", True),  # RFC 3339 lets `t` and `z` be lower case
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
    assign_event_ids([checked])
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
    events = [{"tenant_id": 7, "message_id": None, "event_id": None} for _ in range(1000)]
    assign_event_ids(events)
    ids = {uuid.UUID(e["event_id"]) for e in events}
    assert len(ids) == 1000 and all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)


def _wire(checked: dict[str, object] | Rejection) -> bytes | Rejection:
    return checked if isinstance(checked, Rejection) else encode_batch([checked])


_TRICKY_VALUES = [
    None,
    True,
    0,
    1.5,
    "",
    "u",
    "order_placed",
    "Bad-Type",
    "a\x85b",
    "a\nb",
    "é" * 256,
    "x" * 257,
    "2026-04-25T10:00:00.123456+00:00",
    "2026-04-25T10:00:00.5Z",
    "2026-04-25 10:00:00.123",
    "2026-04-26T13:00:00.000Z",
    "1899-12-31T23:59:59.999Z",
    "2026-02-30T00:00:00.000Z",
    {},
    {"a": [1, {"b": None}]},
    {"big": "x" * (MAX_PAYLOAD_BYTES + 1)},
    [1],
]


@pytest.mark.parametrize("value", _TRICKY_VALUES, ids=repr)
@pytest.mark.parametrize("field", ["user_id", "event_type", "occurred_at", "payload", "message_id", "extra"])
def test_the_batch_fast_path_decides_exactly_like_the_model(field: str, value: object) -> None:
    # GIVEN a valid event with one field set to a tricky value (or an item that is not an object)
    raw = {"user_id": "u", "event_type": "order_placed", "message_id": "m-1", field: value}
    for item in (raw, value):
        # WHEN checked through the batch path and through the model alone
        [batch] = validate_events([item], STAMP)
        single = validate_event(item, STAMP, "/events/0")
        # THEN the outcome, the wire form and the refusal are identical
        assert _wire(batch) == _wire(single)


@settings(max_examples=60, deadline=None)
@given(user_id=st.text(max_size=260), event_type=st.text(max_size=8), message_id=st.none() | st.text(max_size=4))
def test_the_batch_fast_path_agrees_on_any_text(user_id: str, event_type: str, message_id: str | None) -> None:
    raw = {"user_id": user_id, "event_type": event_type, "message_id": message_id}
    [batch] = validate_events([raw], STAMP)
    assert _wire(batch) == _wire(validate_event(raw, STAMP, "/events/0"))


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-04-25T10:00:00.123456+00:00",
        "2026-04-25T10:00:00.1239Z",
        "2026-04-25T10:00:00.120",
        "2026-04-25T10:00:00.5Z",
        "2026-04-25T10:00:00Z",
        "2026-04-25T12:00:00.123+02:00",
        "2026-04-25 10:00:00.123",
        "2026-04-25",
        "2026-04-25T10:00:00.123+00:00",
        "2026-04-25T10:00:00.123Z",
        "2026-04-25T10:00:00.123456Z",
        "2026-04-25T10:00:00.123-00:00",
        "2026-04-25T10:00:00.1234+00:00",
        "2026-W17-6T10:00:00.123Z",
        "20260425T100000.123Z",
    ],
)
def test_occurred_at_is_canonical_utc_millis(occurred_at: str) -> None:
    [checked] = validate_events([{"user_id": "u", "event_type": "e", "occurred_at": occurred_at}], STAMP)
    assert isinstance(checked, dict)
    parsed = datetime.fromisoformat(occurred_at)
    assert checked["occurred_at"] == iso_millis(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11, seconds=1, microseconds=500))]
        )
    )
)
def test_iso_millis_is_isoformat_in_utc_truncated_to_milliseconds(moment: datetime) -> None:
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 1 or 9999
        return
    assert iso_millis(moment) == in_utc.isoformat(timespec="milliseconds")


def _payload(levels: int) -> dict[str, object]:
    payload: dict[str, object] = {"leaf": 1}
    for _ in range(levels - 1):
        payload = {"a": payload}
    return payload


def test_payload_nesting_is_bounded_and_refused_per_event() -> None:
    # GIVEN payloads at the limit, one level past it, and past what orjson can write (254 levels)
    at_limit = validate_event({"user_id": "u", "event_type": "e", "payload": _payload(MAX_PAYLOAD_DEPTH)}, STAMP)
    assert isinstance(at_limit, dict)
    for levels in (MAX_PAYLOAD_DEPTH + 1, 300):
        # WHEN each is validated, by the model's path and by the batch's fast path
        raw = {"user_id": "u", "event_type": "e", "payload": _payload(levels)}
        checked = [(validate_event(raw, STAMP), "/payload"), (validate_events([raw], STAMP)[0], "/events/0/payload")]
        for refused, pointer in checked:
            # THEN a refusal of that event naming the payload, never an exception
            assert isinstance(refused, Rejection), levels
            assert (refused.error_type, refused.pointer) == ("invalid_payload", pointer)
            assert f"more than {MAX_PAYLOAD_DEPTH} levels" in refused.detail
