"""The Pub/Sub → CloudEvent envelope Eventarc delivers, both directions."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, TypeVar

import pybase64
from pydantic import BaseModel, ValidationError

from segops.bus.base import BusMessage
from segops.errors import PermanentError

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
M = TypeVar("M", bound=BaseModel)


def to_cloudevent(message: BusMessage, project: str, subscription: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Binary-mode CloudEvent headers and JSON body as Eventarc sends them for a Pub/Sub message."""
    headers = {
        "ce-id": message.message_id,
        "ce-specversion": "1.0",
        "ce-source": f"//pubsub.googleapis.com/projects/{project}/topics/{message.topic}",
        "ce-type": PUBSUB_EVENT_TYPE,
        "ce-time": message.publish_time.isoformat().replace("+00:00", "Z"),
        "Content-Type": "application/json",
    }
    body = {
        "message": {
            "data": pybase64.b64encode(message.data).decode(),
            "attributes": message.attributes,
            "messageId": message.message_id,
            "publishTime": headers["ce-time"],
        },
        "subscription": f"projects/{project}/subscriptions/{subscription}",
        "deliveryAttempt": message.delivery_attempt,
    }
    return headers, body


def from_cloudevent(event: Any) -> BusMessage:
    """Decode a functions-framework CloudEvent carrying a Pub/Sub message."""
    data = event.data or {}
    message = data.get("message") or {}
    source = str(event["source"])
    published = message.get("publishTime") or event["time"]
    return BusMessage(
        topic=source.rsplit("/", 1)[-1],
        data=decode_data(message.get("data") or b""),
        attributes=dict(message.get("attributes") or {}),
        message_id=str(message.get("messageId") or event["id"]),
        publish_time=datetime.fromisoformat(str(published).replace("Z", "+00:00")),
        delivery_attempt=int(data.get("deliveryAttempt") or _push_delivery_attempt() or 1),
    )


def decode_data(text: str | bytes) -> bytes:
    """A Pub/Sub message's base64 `data`. Pub/Sub writes strict base64, which pybase64 decodes ~40x
    faster than the standard library (a 500-event message: ~440 -> ~11 us); anything else is decoded
    as `base64.b64decode` always did (characters outside the alphabet are skipped)."""
    try:
        return pybase64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error included
        return base64.b64decode(text)


def _push_delivery_attempt() -> int | None:
    """`deliveryAttempt` of the raw Pub/Sub push body being served, if any.

    Terraform delivers by push subscriptions with a dead-letter policy, whose bodies carry the
    attempt number; functions-framework's conversion of a raw push into a CloudEvent drops it,
    so it is read back from the request.
    """
    import flask

    if not flask.has_request_context():
        return None
    body = flask.request.get_json(silent=True)
    attempt = body.get("deliveryAttempt") if isinstance(body, dict) else None
    return attempt if isinstance(attempt, int) and attempt > 0 else None


def parse_message(message: BusMessage, model: type[M]) -> M:
    """Validate a message body; a malformed body can never succeed, so it is permanent."""
    try:
        return model.model_validate_json(message.data)
    except ValidationError as exc:
        raise PermanentError(
            f"malformed {message.topic} message", {"errors": exc.errors(include_url=False, include_input=False)}
        ) from exc
