"""The writer reads `EventBatch` messages without the model only when the model would accept them with
the same values: on any message, `read_batch` gives the model's events (each payload as its message's
JSON text, the same JSON value; the same text for every message the edge writes), or defers to it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from segops.ingestion.events import Stamp, assign_event_ids, encode_batch, validate_events
from segops.ingestion.writer_rows import WriterEvent, payload_text, read_batch, writer_events
from segops.messages import EventBatch

STAMP = Stamp(3, datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), "api")


def _edge_message(events: list[dict[str, Any]]) -> bytes:
    """A message as the HTTP functions publish it."""
    checked = validate_events(events, STAMP)
    accepted = [e for e in checked if isinstance(e, dict)]
    assign_event_ids(accepted)
    return encode_batch(accepted)


def _by_model(data: bytes) -> list[WriterEvent] | ValidationError:
    """What the writer stored before `read_batch`: the model's events, or why they could not be stored."""
    try:
        events = EventBatch.model_validate_json(data).events
    except ValidationError as exc:
        return exc
    return writer_events(events)


def _agrees(data: bytes) -> bool:
    """`read_batch` deferred, or the model accepts the message with the same values: every field
    equal, each payload the JSON text of the model's payload."""
    fast = read_batch(data)
    if fast is None:
        return True
    try:
        events = EventBatch.model_validate_json(data).events
    except ValidationError:
        return False
    model = writer_events(events)
    return [(*e[:7], e.source) for e in fast] == [(*e[:7], e.source) for e in model] and [
        json.loads(e.payload) for e in fast
    ] == [json.loads(e.payload) for e in model] == [e.payload for e in events]


def test_a_message_from_the_edge_is_read_without_the_model_with_the_models_values() -> None:
    # GIVEN a message as the HTTP functions publish it (client message ids, payloads, times in two forms)
    data = _edge_message(
        [
            {"user_id": "u1", "event_type": "order_placed", "payload": {"total": 9.5, "items": [1, {"a": None}]}},
            {"user_id": "u2", "event_type": "page_viewed", "message_id": "m-1", "occurred_at": "2026-06-01T10:00:00Z"},
            {"user_id": "u3", "event_type": "signed_up", "occurred_at": "2026-05-31T23:00:00.5-02:00"},
        ]
    )
    # WHEN the writer reads it
    events = read_batch(data)
    # THEN no model was needed, and the events are exactly the model's
    assert events is not None and events == _by_model(data)
    assert [e.message_id for e in events] == ["", "m-1", ""]
    assert events[0][:8] == (
        3,
        events[0].event_id,
        "",
        "u1",
        "order_placed",
        STAMP.received_at.replace(microsecond=123000),
        STAMP.received_at.replace(microsecond=123000),
        '{"total":9.5,"items":[1,{"a":null}]}',
    )


_VALID = orjson.loads(
    _edge_message([{"user_id": "u", "event_type": "order_placed", "message_id": "m", "payload": {"n": 1}}])
)["events"][0]
_TRICKY: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    2**64 + 1,
    1.0,
    1e300,
    "",
    "u",
    "a\x00b",
    "é",
    "2026-06-01T12:00:00.123+00:00",
    "2026-06-01T12:00:00.123Z",
    "2026-06-01T12:00:00.123456+00:00",
    "2026-06-01T14:00:00.123+02:00",
    "2026-02-30T12:00:00.123+00:00",
    "2026-06-01T24:00:00.000+00:00",
    "0000-01-01T00:00:00.000+00:00",
    "9999-12-31T23:59:59.999+00:00",
    "2026-06-01",
    "5d0f7a52-6a3b-4c61-9a0e-4f1c2b7d9e10",
    "5D0F7A52-6A3B-4C61-9A0E-4F1C2B7D9E10",
    "5d0f7a526a3b4c619a0e4f1c2b7d9e10",
    "{5d0f7a52-6a3b-4c61-9a0e-4f1c2b7d9e10}",
    "5d0f7a52-6a3b-4c61-9a0e-4f1c2b7d9e10,5d0f7a52-6a3b-4c61-9a0e-4f1c2b7d9e10",
    "2026-06-01T12:00:00.123+00:00,2026-06-01T12:00:00.123+00:00",
    {},
    {"n": 2**64 + 1},
    {"n": -(2**63) - 1},
    {"n": 2**63},
    {"n": 1e19},
    {"id": "1234567890123456789012"},
    {"a": [1, {"b": [None, 1.5e-300]}]},
    [],
    [1],
]


@pytest.mark.parametrize("value", _TRICKY, ids=repr)
@pytest.mark.parametrize("field", [*_VALID, "extra"])
def test_one_tricky_field_is_read_as_the_model_reads_it_or_left_to_the_model(field: str, value: object) -> None:
    # GIVEN an edge message whose second event has one field set to a tricky value, or removed
    for event in ({**_VALID, field: value}, {k: v for k, v in _VALID.items() if k != field}):
        data = _json({"events": [_VALID, event]})
        # THEN reading it without the model gives the model's events, or defers to the model
        assert _agrees(data), event


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"events": []}',
        b'{"events": {}}',
        b'{"events": [1]}',
        b'{"events": [], "more": 1}',
        b'{"events": [{"tenant_id": 1}]}',
        b'{"events": [{}]} trailing',
        b'{"events": [{"a": NaN}]}',
        b'{"events": [{"payload": {"n": 123456789012345678901234567890}}]}',
        b"\xff",
    ],
)
def test_a_malformed_message_is_left_to_the_model_which_refuses_it(data: bytes) -> None:
    assert read_batch(data) is None and isinstance(_by_model(data), ValidationError)


def test_a_payload_is_stored_as_the_json_text_its_message_carries() -> None:
    # GIVEN a message the edge did not write: spaces, escapes and an integer beyond 64 bits in a payload
    payload = '{ "n" : 18446744073709551617, "s": "caf\\u00e9 \\"x\\"", "f": 1E2 }'
    data = _json({"events": [_VALID]}).replace(b'{"n": 1}', payload.encode())
    # WHEN the writer reads it
    events = read_batch(data)
    # THEN the payload is stored as its text, which holds the same JSON value as the model reads
    assert events is not None and events[0].payload == payload
    assert json.loads(events[0].payload) == EventBatch.model_validate_json(data).events[0].payload
    # AND the model's path (orjson writes no integer beyond 64 bits) stores the same value
    by_model = _by_model(data)
    assert isinstance(by_model, list) and json.loads(by_model[0].payload) == json.loads(payload)
    # AND a long numeric user id (digits inside a string) does not keep a message from the fast path
    assert read_batch(_json({"events": [{**_VALID, "user_id": "1234567890123456789012"}]})) is not None


def test_a_payload_is_written_as_orjson_writes_it_and_an_integer_beyond_64_bits_as_its_digits() -> None:
    # GIVEN payloads as the model parses them
    plain = {"total": 9.5, "t": "café", "items": [1, None, {"ok": True}], "inf": float("inf")}
    big = {**plain, "n": -(2**64) - 5, "deep": [{"m": 2**100}], "nan": float("nan")}
    # WHEN the writer writes their text THEN orjson's text where it can, and the same value where it cannot
    assert payload_text(plain) == orjson.dumps(plain).decode()
    assert json.loads(payload_text(big)) == {**big, "inf": None, "nan": None}
    assert '"n":-18446744073709551621' in payload_text(big) and "café" in payload_text(big)


def test_the_edge_writes_a_payload_as_compact_json_with_one_value_per_key() -> None:
    # GIVEN a client body with spaces, escapes and a repeated key in a payload
    payload = b'{"a": 1, "t": "caf\\u00e9", "a": 2}'
    body = b'{"events": [{"user_id": "u", "event_type": "page_viewed", "payload": ' + payload + b"}]}"
    checked = validate_events(orjson.loads(body)["events"], STAMP)
    accepted = [e for e in checked if isinstance(e, dict)]
    assign_event_ids(accepted)
    # WHEN the writer reads the edge's message
    events = read_batch(encode_batch(accepted))
    # THEN the payload is the compact text of the parsed object: the last value of the key, as the model
    assert events is not None and events[0].payload == '{"a":2,"t":"café"}'


def test_a_payload_that_is_not_utf8_is_left_to_the_model_which_refuses_it() -> None:
    data = _json({"events": [_VALID]}).replace(b'{"n": 1}', b'{"n": "\xff"}')
    assert read_batch(data) is None and isinstance(_by_model(data), ValidationError)


def _json(message: dict[str, Any]) -> bytes:
    """`message` as JSON text, integers beyond 64 bits written out (the standard library does, orjson cannot)."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False).encode()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from([*_VALID, "extra"]), value=_JSON)
def test_any_json_value_in_any_field_is_read_as_the_model_reads_it(field: str, value: Any) -> None:
    assert _agrees(_json({"events": [_VALID, {**_VALID, field: value}]}))
