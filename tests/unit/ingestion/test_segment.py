"""Segment messages → native events: names, identities, timestamps, page fields, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segops.event_type import is_event_type
from segops.ingestion.events import MAX_FUTURE, Rejection, Stamp, encode_batch, validate_event
from segops.ingestion.segment import (
    MESSAGE_TYPES,
    MessageType,
    _in_segment_terms,
    snake_case,
    to_native,
    validate_batch,
    validate_message,
)

RECEIVED = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "order_completed"),
        ("orderCompleted", "order_completed"),
        ("checkout-started", "checkout_started"),
        ("  Product  Viewed!! ", "product_viewed"),
        ("HTTPRequestSent", "http_request_sent"),
        ("already_snake", "already_snake"),
        ("2FA Enabled", "event_2fa_enabled"),
        ("Événement Créé", "evenement_cree"),
        ("item2Name", "item2_name"),
        ("!!!", ""),
        # Other scripts are transliterated, not dropped: they neither vanish nor merge into one type
        ("Straße", "strasse"),
        ("Ørsted Bought", "orsted_bought"),
        ("Заказ оформлен 2", "zakaz_oformlen_2"),
        ("Возврат 2", "vozvrat_2"),
        ("注文完了", "zhu_wen_wan_le"),
        ("Αγορά", "agora"),
    ],
)
def test_event_names_become_snake_case_event_types(name: str, expected: str) -> None:
    assert snake_case(name) == expected


@given(st.text(min_size=1, max_size=40))
def test_every_name_with_a_letter_or_digit_gets_a_valid_event_type(name: str) -> None:
    # GIVEN any event name holding a letter or digit of any script
    # THEN it maps to a valid event type (names in other scripts were refused: nothing was left of them)
    if any(c.isalnum() for c in name):
        assert is_event_type(snake_case(name)), (name, snake_case(name))


def test_track_keeps_the_original_event_name_and_its_properties() -> None:
    native = to_native(
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 5}, "messageId": "m-1"},
        None,
        None,
        RECEIVED,
    )
    assert native == {
        "user_id": "u1",
        "event_type": "order_completed",
        "payload": {"total": 5, "event_name": "Order Completed"},
        "message_id": "m-1",
    }


def test_an_anonymous_user_is_its_anonymous_id_and_a_known_user_keeps_it_in_the_payload() -> None:
    anonymous = to_native({"anonymousId": "anon-1", "event": "Clicked"}, "track", None, RECEIVED)
    known = to_native({"userId": 42, "anonymousId": "anon-1", "event": "Clicked"}, "track", None, RECEIVED)
    assert isinstance(anonymous, dict) and isinstance(known, dict)
    assert anonymous["user_id"] == "anon-1" and anonymous["payload"]["anonymous_id"] == "anon-1"
    assert known["user_id"] == "42" and known["payload"]["anonymous_id"] == "anon-1"


def test_clock_skew_is_corrected_from_sent_at_as_segment_specifies() -> None:
    # GIVEN a device clock 1 h fast: the event happened 10 s before the batch was sent
    message = {"userId": "u", "event": "E", "timestamp": "2026-06-01T13:00:00Z", "sentAt": "2026-06-01T13:00:10Z"}
    native = to_native(message, "track", None, RECEIVED)
    # THEN timestamp = receivedAt - (sentAt - originalTimestamp)
    assert isinstance(native, dict) and native["occurred_at"] == "2026-06-01T11:59:50.000+00:00"
    # AND a batch-level sentAt applies to messages without their own; no sentAt keeps the client's time
    batched = to_native({**message, "sentAt": None} | {"sentAt": "2026-06-01T13:00:10Z"}, "track", None, RECEIVED)
    from_batch = to_native(
        {k: v for k, v in message.items() if k != "sentAt"}, "track", "2026-06-01T13:00:20Z", RECEIVED
    )
    as_sent = to_native({k: v for k, v in message.items() if k != "sentAt"}, "track", None, RECEIVED)
    assert isinstance(batched, dict) and isinstance(from_batch, dict) and isinstance(as_sent, dict)
    assert from_batch["occurred_at"] == "2026-06-01T11:59:40.000+00:00"
    assert as_sent["occurred_at"] == "2026-06-01T13:00:00Z"
    # AND RudderStack's `originalTimestamp` is the device time when present
    rudder = to_native(
        {"userId": "u", "event": "E", "originalTimestamp": "2026-06-01T13:00:05Z", "sentAt": "2026-06-01T13:00:10Z"},
        "track",
        None,
        RECEIVED,
    )
    assert isinstance(rudder, dict) and rudder["occurred_at"] == "2026-06-01T11:59:55.000+00:00"


def test_page_takes_path_url_title_referrer_from_properties_or_context() -> None:
    native = to_native(
        {
            "userId": "u",
            "name": "Pricing",
            "properties": {"title": "Pricing - Acme"},
            "context": {
                "page": {
                    "path": "/pricing",
                    "url": "https://acme.test/pricing",
                    "title": "ignored",
                    "referrer": "https://google.com",
                }
            },
        },
        "page",
        None,
        RECEIVED,
    )
    assert isinstance(native, dict) and native["event_type"] == "page_viewed"
    assert native["payload"] == {
        "title": "Pricing - Acme",
        "path": "/pricing",
        "url": "https://acme.test/pricing",
        "referrer": "https://google.com",
        "name": "Pricing",
    }


@pytest.mark.parametrize(
    ("kind", "message", "event_type", "payload"),
    [
        ("identify", {"userId": "u", "traits": {"plan": "pro"}}, "context_identified", {"plan": "pro"}),
        ("screen", {"userId": "u", "name": "Home"}, "screen_viewed", {"name": "Home"}),
        (
            "group",
            {"userId": "u", "groupId": "g1", "traits": {"seats": 5}},
            "group_identified",
            {"seats": 5, "group_id": "g1"},
        ),
        ("alias", {"userId": "u", "previousId": "anon-9"}, "user_aliased", {"previous_id": "anon-9"}),
    ],
)
def test_calls_without_an_event_name_map_to_fixed_event_types(
    kind: str, message: dict[str, object], event_type: str, payload: dict[str, object]
) -> None:
    native = to_native({"type": kind, **message}, None, None, RECEIVED)
    assert isinstance(native, dict) and (native["event_type"], native["payload"]) == (event_type, payload)


@pytest.mark.parametrize(
    ("message", "error_type"),
    [
        ({"type": "track", "event": "E"}, "invalid_user_id"),
        ({"type": "track", "userId": "u"}, "invalid_event_type"),
        ({"type": "track", "userId": "u", "event": "!!"}, "invalid_event_type"),
        ({"type": "bogus", "userId": "u"}, "invalid_event"),
        ({"type": "group", "userId": "u"}, "invalid_event"),
        ({"type": "alias", "anonymousId": "a", "previousId": "p"}, "invalid_user_id"),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"}, "invalid_occurred_at"),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": 5}, "invalid_occurred_at"),
        ({"type": "track", "userId": "u" * 300, "event": "E"}, "invalid_user_id"),
        ({"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 40_000}}, "payload_too_large"),
        ({"type": "track", "userId": "u", "event": "E", "messageId": "bad\nid"}, "invalid_message_id"),
        ("not an object", "invalid_event"),
        ({"type": "track", "userId": "u", "event": "E", "properties": "total=5"}, "invalid_payload"),
        ({"type": "page", "userId": "u", "properties": [1, 2]}, "invalid_payload"),
        ({"type": "screen", "userId": "u", "properties": 5}, "invalid_payload"),
        ({"type": "identify", "userId": "u", "traits": ["pro"]}, "invalid_payload"),
        ({"type": "group", "userId": "u", "groupId": "g", "traits": "pro"}, "invalid_payload"),
    ],
)
def test_refusals_use_the_native_error_types(message: object, error_type: str) -> None:
    checked = validate_message(message, None, None, Stamp(1, RECEIVED, "segment"), "/batch/0")
    assert isinstance(checked, Rejection) and checked.error_type == error_type, checked


def test_a_properties_or_traits_that_is_not_an_object_is_refused_not_dropped() -> None:
    # GIVEN a track whose properties are a list (the client meant to send data)
    checked = validate_message(
        {"type": "track", "userId": "u", "event": "E", "properties": [{"total": 5}]},
        None,
        None,
        Stamp(1, RECEIVED, "segment"),
        "/batch/3",
    )
    # THEN it is refused at that field, not stored with its properties silently lost
    assert checked == Rejection("invalid_payload", "properties: must be a JSON object", "/batch/3/properties")
    # AND null, as some clients send for "none", still means no properties
    native = to_native({"type": "identify", "userId": "u", "traits": None}, None, None, RECEIVED)
    assert isinstance(native, dict) and native["payload"] == {}


def test_a_clock_skew_correction_beyond_any_date_is_refused_not_raised() -> None:
    stamp = Stamp(1, RECEIVED, "segment")
    for timestamp, sent_at, detail in [
        ("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "before 1900-01-01"),
        ("9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "more than 24 h in the future"),
    ]:
        checked = validate_message(
            {"type": "track", "userId": "u", "event": "E", "timestamp": timestamp}, None, sent_at, stamp
        )
        assert (
            isinstance(checked, Rejection) and checked.error_type == "invalid_occurred_at" and detail in checked.detail
        )


def _slow(message: object, kind: MessageType | None, sent_at: object, stamp: Stamp) -> bytes | Rejection:
    """What the mapping then the native validation (the pydantic model) decide, without any fast path
    (a refusal of the native rules named in the client's own fields, as `_checked` words it)."""
    native = to_native(message, kind, sent_at, stamp.received_at)
    checked = native if isinstance(native, Rejection) else validate_event(native, stamp)
    if isinstance(checked, Rejection) and not isinstance(native, Rejection):
        assert isinstance(message, dict)
        return _in_segment_terms(checked, message, kind, "")
    return checked if isinstance(checked, Rejection) else encode_batch([checked])


def _fast(message: object, kind: MessageType | None, sent_at: object, stamp: Stamp) -> bytes | Rejection:
    checked = validate_message(message, kind, sent_at, stamp)
    return checked if isinstance(checked, Rejection) else encode_batch([checked])


_LIMIT = (RECEIVED + MAX_FUTURE).strftime("%Y-%m-%dT%H:%M:%S")
_TRICKY = [
    None,
    True,
    7,
    2.5,
    "",
    "u",
    "Order Completed",
    "!!",
    "a\nb",
    "a\x85b",
    "x" * 257,
    "2026-06-01T11:00:00.123456Z",
    "2026-06-01T11:00:00Z",
    "2026-06-01T13:00:00.5+02:00",
    "2026-06-01 11:00:00",
    "2026-06-01",
    f"{_LIMIT}.000Z",
    f"{_LIMIT}.0005Z",
    f"{_LIMIT}.001Z",
    "1900-01-01T00:00:00.000Z",
    "1899-12-31T23:59:59.9995Z",
    "2026-02-30T00:00:00Z",
    {},
    {"total": 5, "event_name": "x", "anonymous_id": "y"},
    {"big": "y" * 40_000},
    {"page": {"path": "/p", "title": "T"}, "traits": {"plan": "pro"}},
    [1],
]
_FIELDS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "properties",
    "traits",
    "context",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "messageId",
    "previousId",
    "groupId",
    "name",
]


@pytest.mark.parametrize("value", _TRICKY, ids=repr)
@pytest.mark.parametrize("field", _FIELDS)
def test_the_fast_path_decides_exactly_like_the_mapping_and_the_model(field: str, value: object) -> None:
    # GIVEN valid messages of every call type with one field set to a tricky value
    stamp = Stamp(1, RECEIVED, "segment")
    base = {"userId": "u", "event": "Order Completed", "groupId": "g", "previousId": "p", "messageId": "m-1"}
    for kind in MESSAGE_TYPES:
        message = {**base, "type": kind, "timestamp": "2026-06-01T11:59:00.250Z", field: value}
        # a batch-level sentAt (skew corrected), none, or one that does not parse
        for sent_at in ("2026-06-01T12:00:03.125Z", None, "later"):
            # THEN the outcome, the wire form and the refusal are identical with and without the fast path
            assert _fast(message, None, sent_at, stamp) == _slow(message, None, sent_at, stamp), (kind, sent_at)
            assert _fast(message, kind, sent_at, stamp) == _slow(message, kind, sent_at, stamp), (kind, sent_at)


@settings(max_examples=60, deadline=None)
@given(
    user_id=st.none() | st.integers() | st.text(max_size=260),
    name=st.text(max_size=12),
    timestamp=st.none() | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | st.text(max_size=30),
    sent_at=st.none() | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)
def test_the_fast_path_agrees_on_any_ids_names_and_times(
    user_id: object, name: str, timestamp: str | None, sent_at: str | None
) -> None:
    stamp = Stamp(1, RECEIVED, "segment")
    message = {"type": "track", "userId": user_id, "anonymousId": "a", "event": name, "timestamp": timestamp}
    assert _fast(message, None, sent_at, stamp) == _slow(message, None, sent_at, stamp)


@pytest.mark.parametrize(
    ("message", "pointer", "detail"),
    [
        ({"type": "track", "userId": "u\x07", "event": "E"}, "/userId", "userId: "),
        ({"type": "track", "anonymousId": "a" * 300, "event": "E"}, "/anonymousId", "anonymousId: "),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": "garbage"}, "/timestamp", "timestamp: "),
        ({"type": "track", "userId": "u", "event": "E", "originalTimestamp": "x"}, "/originalTimestamp", ""),
        ({"type": "track", "userId": "u", "event": "E", "messageId": "m" * 300}, "/messageId", "messageId: "),
        ({"type": "track", "userId": "u", "event": "E", "properties": {"b": "x" * 40_000}}, "/properties", ""),
        ({"type": "identify", "userId": "u", "traits": {"b": "x" * 40_000}}, "/traits", ""),
    ],
)
def test_a_refusal_names_the_field_the_client_sent(message: dict[str, object], pointer: str, detail: str) -> None:
    # GIVEN a Segment message one of whose fields breaks a native rule
    # THEN the refusal points at that field as the client spelt it, in /v1/batch too
    refused = validate_message(message, None, None, Stamp(1, RECEIVED, "segment"))
    assert isinstance(refused, Rejection) and refused.pointer == pointer and refused.detail.startswith(detail)
    [in_batch] = validate_batch([message], None, Stamp(1, RECEIVED, "segment"))
    assert isinstance(in_batch, Rejection) and in_batch.pointer == "/batch/0" + pointer
