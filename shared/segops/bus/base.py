from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from segops import clock


class Topic(StrEnum):
    EVENTS = "events"
    SEGMENT_COMPUTE = "segment-compute"
    MEMBERSHIP_CHANGES = "membership-changes"
    SEGMENT_EXPORTS = "segment-exports"
    CONNECTOR_SYNCS = "connector-syncs"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}-dead-letter"


@dataclass(frozen=True)
class BusMessage:
    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: datetime = field(default_factory=clock.now)
    delivery_attempt: int = 1


class Bus(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """Publish durably; returns the message id once the bus has accepted the message."""
        ...

    def check(self) -> None: ...

    def worker_status(self) -> str:
        """'ok' when messages are being consumed, else a short reason."""
        ...
