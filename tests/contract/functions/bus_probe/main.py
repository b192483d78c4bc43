"""A Pub/Sub-triggered test function: records what it is given (in the control-plane store, under
`bus_probe/`), fails on request.

Attributes steer it: `fail_before_attempt=N` raises a retryable error on attempts below N,
`permanent=1` raises a permanent error (acked, never redelivered).
"""

import base64
from typing import Any

import functions_framework
from segops.bus.base import BusMessage
from segops.bus.consumer import consume
from segops.errors import PermanentError, RetryableError
from segops.runtime import Runtime


def record(message: BusMessage, runtime: Runtime) -> None:
    runtime.store.put(
        f"bus_probe/{message.message_id}/{message.delivery_attempt:04d}",
        {
            "topic": message.topic,
            "data": base64.b64encode(message.data).decode(),
            "attributes": message.attributes,
            "message_id": message.message_id,
            "delivery_attempt": message.delivery_attempt,
        },
    )
    if message.attributes.get("permanent") == "1":
        raise PermanentError("cannot ever succeed")
    if message.delivery_attempt < int(message.attributes.get("fail_before_attempt", "0")):
        raise RetryableError("not yet")


@functions_framework.cloud_event
def bus_probe(event: Any) -> None:
    consume(event, record, "bus_probe")
