"""The one place bus-side errors become ack or nack."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from segops.bus import dead_letters
from segops.bus.base import BusMessage
from segops.bus.cloudevents import from_cloudevent
from segops.errors import PermanentError
from segops.runtime import Runtime, get_runtime

log = logging.getLogger("segops.bus")

MessageHandler = Callable[[BusMessage, Runtime], None]


def consume(event: Any, handler: MessageHandler, function: str) -> None:
    """Run `handler` for a Pub/Sub CloudEvent. Returning acks; raising nacks (Pub/Sub redelivers).

    A `PermanentError` is acked after logging: redelivery cannot fix it, and the handler has
    already recorded it where its domain wants it recorded. Any other failure of the last attempt
    Pub/Sub makes is archived as a dead letter first (`segops.bus.dead_letters`), for replay.
    """
    message = from_cloudevent(event)
    runtime = get_runtime()
    try:
        handler(message, runtime)
    except PermanentError as exc:
        log.error(
            "message dropped",
            extra={
                "function": function,
                "topic": message.topic,
                "message_id": message.message_id,
                "error": exc.message,
            },
        )
    except Exception as exc:
        if message.delivery_attempt >= dead_letters.last_attempt(function, runtime.settings):
            dead_letters.record(runtime.store, message, function, exc)
        raise
