"""A Pub/Sub-triggered test function: records what it is given, fails on request.

Attributes steer it: `fail_before_attempt=N` raises a retryable error on attempts below N,
`permanent=1` raises a permanent error (acked, never redelivered).
"""

from typing import Any

import functions_framework
from segops.bus.base import BusMessage
from segops.bus.consumer import consume
from segops.errors import PermanentError, RetryableError
from segops.runtime import Runtime


def record(message: BusMessage, runtime: Runtime) -> None:
    runtime.extras.setdefault("bus_probe", []).append(message)
    if message.attributes.get("permanent") == "1":
        raise PermanentError("cannot ever succeed")
    if message.delivery_attempt < int(message.attributes.get("fail_before_attempt", "0")):
        raise RetryableError("not yet")


@functions_framework.cloud_event
def bus_probe(event: Any) -> None:
    consume(event, record, "bus_probe")
