"""The Event Sandbox: one user's segments with and without a simulated event, evaluated in memory.

One primary-key read of the warehouse fetches the user's events at or before the evaluation time
(only the columns the DSL needs, grouped by event type); the simulated event is merged in Python and
every active segment is evaluated on both histories by `segops.dsl.evaluator`, which is
property-tested to agree with the compiled SQL. Nothing is written anywhere. A user without history
starts in no segment, exactly like a user outside the universe.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from segops import clock
from segops.dsl import parse_definition
from segops.dsl.evaluator import EventColumns, UserHistory, read_event_types
from segops.runtime import Runtime
from segops.segments.active import ActiveSegment, active_segments
from segops.warehouse import TenantWarehouse

# One user's history is one primary-key range: a read that needs more than this is a runaway user,
# answered with the warehouse's error rather than by holding the request and the server's memory.
_READ_SETTINGS = "SETTINGS max_execution_time = 5, max_memory_usage = 536870912"
# Event types no active definition names only place the user in the universe (any event at or before
# the evaluation time): one placeholder event each, and their payloads never held, however many.
_NAMED = "has({types:Array(String)}, event_type)"
HISTORY_QUERY = (
    f"SELECT event_type, "
    f"if({_NAMED}, groupArrayIf(toUnixTimestamp64Milli(occurred_at), {_NAMED}), "
    f"[max(toUnixTimestamp64Milli(occurred_at))]) AS occurred, "
    f"if({_NAMED}, groupArrayIf(toUnixTimestamp64Milli(received_at), {_NAMED}), "
    f"[max(toUnixTimestamp64Milli(received_at))]) AS received, "
    f"if({_NAMED}, groupArrayIf(payload, {_NAMED}), ['']) AS payloads "
    "FROM events "
    "WHERE tenant_id = {tenant_id:UInt64} AND user_id = {user_id:String} AND occurred_at <= {at:DateTime64(3, 'UTC')} "
    f"GROUP BY event_type {_READ_SETTINGS}"
)


@dataclass(frozen=True)
class SimulatedEvent:
    user_id: str
    event_type: str
    occurred_at: datetime | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentDelta:
    entered: list[ActiveSegment]
    exited: list[ActiveSegment]
    unchanged_count: int


def stored_history(wh: TenantWarehouse, user_id: str, at: datetime, types: Collection[str]) -> dict[str, EventColumns]:
    """The user's stored events at or before `at` of the event `types` segments read, as columns per
    event type, and a placeholder event for each other type the user has (one primary-key read)."""
    rows = wh.query(HISTORY_QUERY, {"user_id": user_id, "at": at, "types": sorted(types)}).rows
    return {event_type: EventColumns(occurred, received, payloads) for event_type, occurred, received, payloads in rows}


def simulate(runtime: Runtime, tenant_id: int, event: SimulatedEvent, now: datetime | None = None) -> SegmentDelta:
    """Which of the tenant's active segments the user would enter or exit if `event` happened.

    `occurred_at` defaults to `now`; an event dated after `now` moves the evaluation time to it, so
    the simulated event is always part of its own evaluation. Both histories use the same `now`.
    """
    received_at = now or clock.now()
    occurred_at = event.occurred_at or received_at
    at = max(received_at, occurred_at)
    active = active_segments(runtime, tenant_id)
    # A lookalike's membership comes from a trained model, not from the user's own events: the
    # sandbox cannot move it, so it counts as unchanged.
    defined = [s for s in active if s.definition is not None and s.segment_type != "lookalike"]
    segments = [(s.id, parse_definition(s.definition)) for s in defined]
    types = read_event_types(definition for _, definition in segments)
    real = UserHistory(stored_history(TenantWarehouse(runtime.warehouse, tenant_id), event.user_id, at, types), at)
    before = real.members(segments)
    payload = orjson.dumps(dict(event.payload)).decode()
    after = real.with_event(event.event_type, occurred_at, received_at, payload).members(segments)
    entered = [s for s in defined if s.id in after - before]
    exited = [s for s in defined if s.id in before - after]
    return SegmentDelta(entered, exited, len(active) - len(entered) - len(exited))
