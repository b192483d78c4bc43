"""Put events straight into the warehouse (what the event writer does), for compute tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable

import orjson
from segops.warehouse.base import Warehouse

from tests.support.dsl_reference import Event

_tenants = itertools.count(10_000)

COLUMNS = ("tenant_id", "event_id", "message_id", "user_id", "event_type", "occurred_at", "received_at", "payload")


def fresh_tenant() -> int:
    """A tenant id no other test in this process uses (tests share one chDB data directory)."""
    return next(_tenants) * 1000 + uuid.uuid4().int % 1000


def insert_events(warehouse: Warehouse, tenant_id: int, events: Iterable[Event]) -> None:
    rows = [
        (
            tenant_id,
            uuid.uuid4(),
            "",
            e.user_id,
            e.event_type,
            e.occurred_at,
            e.received_at,
            orjson.dumps(e.payload).decode(),
        )
        for e in events
    ]
    warehouse.insert("events", COLUMNS, rows)
