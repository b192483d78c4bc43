"""Segment messages → native events: names, identities, timestamps, page fields, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from segops.ingestion.events import Rejection, Stamp
from segops.ingestion.segment import snake_case, to_native, validate_message

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
    ],
)
def test_event_names_become_snake_case_event_types(name: str, expected: str) -> None:
    assert snake_case(name) == expected


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
    ],
)
def test_refusals_use_the_native_error_types(message: object, error_type: str) -> None:
    checked = validate_message(message, None, None, Stamp(1, RECEIVED, "segment"), "/batch/0")
    assert isinstance(checked, Rejection) and checked.error_type == error_type, checked
