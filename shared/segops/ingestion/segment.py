"""Segment's HTTP tracking API (`/v1/track|identify|page|screen|group|alias|batch|import`) mapped onto
native events, so Segment and RudderStack clients can send to SegOps unchanged.

Each Segment message becomes one native event dict (the shape `IncomingEvent` describes) and then goes
through the native validation (`validate_event`), so the rules, `error_type`s, error records and stats
are exactly those of `/api/ingestion/track/`. The mapping table is in docs/ingestion.md. Hot path: a
message the native checks certainly accept is mapped and stamped in one pass (`_vouched`), as
`events._vouched` does for native events; anything in doubt takes the mapping and then the model.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from anyascii import anyascii

from segops.event_type import is_event_type
from segops.ingestion.events import (
    Rejection,
    Stamp,
    iso_millis,
    parse_occurred_at,
    validate_event,
    vouch,
)

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("track", "identify", "page", "screen", "group", "alias")
# Native event types of the calls that carry no event name of their own.
EVENT_TYPES: dict[str, str] = {
    "identify": "context_identified",
    "page": "page_viewed",
    "screen": "screen_viewed",
    "group": "group_identified",
    "alias": "user_aliased",
}
# What a page call records even when the client put it in `context.page` rather than `properties`.
PAGE_FIELDS = ("path", "url", "title", "referrer", "search")

# Where a clock-skew correction beyond `datetime`'s range lands (then refused by the native bounds).
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[0-9A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def snake_case(name: str) -> str:
    """`Order Completed`, `orderCompleted`, `order-completed` → `order_completed`; '' when nothing is left.
    Any script is transliterated to ASCII first (`Événement` → `evenement`, `Straße` → `strasse`,
    `Заказ оформлен` → `zakaz_oformlen`, `注文完了` → `zhu_wen_wan_le`): dropping what is not ASCII made
    names in other scripts empty, or one event type (`Заказ 2` and `Возврат 2` were both `event_2`).
    A name starting with a digit gets `event_` in front (event types start with a letter)."""
    # A letter or digit with no transliteration (rare ideographs) is named by its code point.
    ascii_name = "".join(anyascii(c) or (f"_u{ord(c):x}_" if c.isalnum() else "") for c in name)
    words = _NOT_WORD.sub("_", _CAMEL_BOUNDARY.sub("_", ascii_name).lower()).strip("_")
    if words and not words[0].isalpha():
        words = f"event_{words}"
    return words[:128].rstrip("_")


@lru_cache(maxsize=4096)  # a source sends few distinct event names, over and over
def _event_type_of(name: str) -> str:
    """`snake_case(name)` when it is a valid event type, else ''."""
    event_type = snake_case(name)
    return event_type if is_event_type(event_type) else ""


def _text(value: Any) -> str | None:
    """Segment ids may be numbers; anything else that is not a non-empty string counts as absent."""
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _fields(message: dict[str, Any], key: Literal["properties", "traits"]) -> dict[str, Any] | Rejection:
    """A message's `properties` or `traits`: an object, or {} when absent or null. Anything else is
    refused like a native payload that is not an object, rather than silently dropped."""
    value = message.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return Rejection("invalid_payload", f"{key}: must be a JSON object", f"/{key}")


@lru_cache(maxsize=256)  # one `sentAt` per batch, shared by its messages
def _parse_sent_at(text: str) -> datetime | None:
    return parse_occurred_at(text)


def _sent(message: dict[str, Any], batch_sent_at: Any) -> datetime | None:
    """The client's `sentAt` (the message's, else the batch's), if it has a parsable one."""
    sent_at = message.get("sentAt", batch_sent_at)
    return _parse_sent_at(sent_at) if isinstance(sent_at, str) else None


def _corrected(occurred: datetime, sent: datetime, received_at: datetime) -> datetime:
    """Segment's clock-skew correction, `receivedAt - (sentAt - timestamp)`. A result beyond
    `datetime`'s years 1-9999 is clamped to that end, which the native bounds then refuse."""
    skew = sent - occurred
    try:
        return received_at - skew
    except OverflowError:
        return _EARLIEST if skew > timedelta(0) else _LATEST


def corrected_timestamp(original: str, sent: datetime | None, received_at: datetime) -> str:
    """When the event happened: with a client `sentAt`, `_corrected`; without one, the client's
    timestamp as sent. Unparsable values are returned as sent, for the native validation to refuse."""
    occurred = parse_occurred_at(original)
    if occurred is None or sent is None:
        return original
    return iso_millis(_corrected(occurred, sent, received_at))


# What `_mapped` reads off a message: native user id, event type and payload, then the device time
# and the message id as sent (the native rules check those two).
Mapped = tuple[str, str, dict[str, Any], Any, Any]


def _mapped(message: Any, kind: MessageType | None) -> Mapped | Rejection:
    """A Segment message's native fields (`Mapped`), or why it is refused (`kind`: the endpoint's call
    type; None for `/v1/batch`, where each message names its own `type`). Every message of a batch
    comes through here, so the common cases (a non-empty string id, no anonymous id) skip `_text`."""
    if not isinstance(message, dict):
        return Rejection("invalid_event", "event: must be a JSON object", "")
    call = message.get("type", kind) if kind is None else kind
    if call not in MESSAGE_TYPES:
        return Rejection("invalid_event", f"type: must be one of {', '.join(MESSAGE_TYPES)}", "/type")
    user_id = message.get("userId")
    if type(user_id) is not str or not user_id:
        user_id = _text(user_id)
    anonymous_id = message.get("anonymousId")
    if anonymous_id is not None:
        anonymous_id = _text(anonymous_id)
    user = user_id if user_id is not None else anonymous_id
    if user is None:
        return Rejection("invalid_user_id", "user_id: userId or anonymousId is required", "/userId")
    payload: dict[str, Any]
    if call == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name:
            return Rejection("invalid_event_type", "event_type: `event` is required and must be a string", "/event")
        event_type = _event_type_of(name)
        if not event_type:
            return Rejection(
                "invalid_event_type", f"event_type: {name!r} has no letters or digits to name it by", "/event"
            )
        properties = _fields(message, "properties")
        if isinstance(properties, Rejection):
            return properties
        payload = {**properties, "event_name": name}
    elif call in ("identify", "group"):
        traits = _fields(message, "traits")
        if isinstance(traits, Rejection):
            return traits
        payload = dict(traits)
        if call == "identify":
            # RudderStack's SDKs send identify traits in `context.traits`; Segment's top-level ones win.
            payload = {**_object(_object(message.get("context")).get("traits")), **payload}
        else:
            group_id = _text(message.get("groupId"))
            if group_id is None:
                return Rejection("invalid_event", "groupId: is required", "/groupId")
            payload["group_id"] = group_id
        event_type = EVENT_TYPES[call]
    elif call in ("page", "screen"):
        properties = _fields(message, "properties")
        if isinstance(properties, Rejection):
            return properties
        payload = dict(properties)
        page = _object(_object(message.get("context")).get("page"))
        for field in PAGE_FIELDS:
            if field not in payload and field in page:
                payload[field] = page[field]
        for field in ("name", "category"):
            value = message.get(field)
            if isinstance(value, str) and value:
                payload[field] = value
        event_type = EVENT_TYPES[call]
    else:  # alias: the new id is the user; the earlier one is kept for identity resolution
        previous = _text(message.get("previousId"))
        if previous is None or user_id is None:
            return Rejection("invalid_user_id", "user_id: alias needs userId and previousId", "/previousId")
        payload = {"previous_id": previous}
        event_type = EVENT_TYPES[call]
    if anonymous_id is not None:
        payload["anonymous_id"] = anonymous_id
    message_id = message.get("messageId")
    if message_id is not None:
        message_id = _text(message_id) or message_id
    # Segment's libraries send the device time as `timestamp` (RudderStack's as `originalTimestamp`).
    original = message.get("originalTimestamp", message.get("timestamp"))
    return user, event_type, payload, original, message_id


def to_native(
    message: Any, kind: MessageType | None, batch_sent_at: Any, received_at: datetime
) -> dict[str, Any] | Rejection:
    """One Segment message → a native event dict, or why it is refused (`kind` as in `_mapped`)."""
    mapped = _mapped(message, kind)
    if isinstance(mapped, Rejection):
        return mapped
    user_id, event_type, payload, original, message_id = mapped
    native: dict[str, Any] = {
        "user_id": user_id,
        "event_type": event_type,
        "payload": payload,
    }
    if isinstance(original, str):
        native["occurred_at"] = corrected_timestamp(original, _sent(message, batch_sent_at), received_at)
    elif original is not None:
        native["occurred_at"] = original  # refused by validation: not a string
    if message_id is not None:
        native["message_id"] = message_id
    return native


def validate_message(
    message: Any, kind: MessageType | None, batch_sent_at: Any, stamp: Stamp, pointer: str = ""
) -> dict[str, Any] | Rejection:
    """`to_native`, then exactly the native rules (user id length, payload size, timestamps, ...);
    a message the native checks certainly accept is stamped in the same pass (`_vouched`)."""
    vouched = _vouched(message, kind, batch_sent_at, stamp)
    return vouched if vouched is not None else _checked(message, kind, batch_sent_at, stamp, pointer)


def validate_batch(messages: list[Any], batch_sent_at: Any, stamp: Stamp) -> list[dict[str, Any] | Rejection]:
    """`validate_message` for each message of a `/v1/batch` body (each names its own `type`)."""
    checked: list[dict[str, Any] | Rejection] = []
    for index, message in enumerate(messages):
        vouched = _vouched(message, None, batch_sent_at, stamp)
        checked.append(
            vouched if vouched is not None else _checked(message, None, batch_sent_at, stamp, f"/batch/{index}")
        )
    return checked


def _checked(
    message: Any, kind: MessageType | None, batch_sent_at: Any, stamp: Stamp, pointer: str
) -> dict[str, Any] | Rejection:
    """The mapping, then the native validation through the model: the path that words refusals."""
    native = to_native(message, kind, batch_sent_at, stamp.received_at)
    if isinstance(native, Rejection):
        return Rejection(native.error_type, native.detail, pointer + native.pointer)
    checked = validate_event(native, stamp, pointer)
    if isinstance(checked, Rejection):
        return _in_segment_terms(checked, message, kind, pointer)
    return checked


def _in_segment_terms(refused: Rejection, message: dict[str, Any], kind: MessageType | None, at: str) -> Rejection:
    """A native refusal of a mapped message, pointing at (and naming) the field the client sent."""
    field, _, rest = refused.pointer[len(at) :].lstrip("/").partition("/")
    call = kind or message.get("type")
    sent = {
        "user_id": "userId" if _text(message.get("userId")) is not None else "anonymousId",
        "event_type": "event",
        "occurred_at": "originalTimestamp" if "originalTimestamp" in message else "timestamp",
        "message_id": "messageId",
        "payload": "traits" if call in ("identify", "group") else "properties",
    }.get(field)
    if sent is None:
        return refused
    detail = f"{sent}{refused.detail[len(field) :]}" if refused.detail.startswith(f"{field}:") else refused.detail
    return Rejection(refused.error_type, detail, f"{at}/{sent}" + (f"/{rest}" if rest else ""))


def _vouched(message: Any, kind: MessageType | None, batch_sent_at: Any, stamp: Stamp) -> dict[str, Any] | None:
    """What `to_native` + `validate_event` give for `message` when the native checks certainly accept
    it, without building the native dict and printing and re-parsing the corrected time; None when
    in any doubt (the slow path then decides and words the refusal)."""
    mapped = _mapped(message, kind)
    if type(mapped) is not tuple:  # refused: the slow path words it
        return None
    user_id, event_type, payload, original, message_id = mapped
    occurred: datetime | None = None
    if original is not None:
        if type(original) is not str:
            return None
        parsed = parse_occurred_at(original)
        if parsed is None:
            return None
        sent = _sent(message, batch_sent_at)
        if sent is not None:  # else the client's time as sent, canonicalised by the native rules
            occurred = _corrected(parsed, sent, stamp.received_at)
            original = iso_millis(occurred)
    # The mapping made `event_type` a valid event type and `payload` a dict, as `vouch` requires.
    return vouch(user_id, event_type, original, payload, message_id, stamp, occurred)
