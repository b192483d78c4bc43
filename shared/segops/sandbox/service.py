"""The Event Sandbox: one user's segments with and without a simulated event, in ONE query, writing nothing.

Both variants come from a single read of the user's stored history: every stored row is emitted
twice, labelled `real` and `simulated`, and the simulated event (bound as parameters) is added to the
`simulated` copy only. The DSL compiler groups by the label as if it were a user id, so all active
segments are evaluated on both histories in one aggregate pass at the same `now`. A user without
history has no `real` row: they start in no segment, exactly like a user outside the universe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from segops import clock
from segops.config import Settings
from segops.dsl import EventSource, SegmentDefinition, UserProperty, compile_segments, conditions, parse_definition
from segops.dsl.compiler import PROPERTIES_EVENT_TYPE
from segops.membership.lookup import active_segments
from segops.runtime import Runtime
from segops.segments import models as m
from segops.warehouse import TenantWarehouse
from segops.warehouse.limits import limited

REAL = "real"
SIMULATED = "simulated"
# ClickHouse's and-compare-chain pass infers extra comparisons from every AND chain; with 100 segments
# it alone doubles the analysis time of this latency-bound query and cannot change its result.
_SETTINGS = {"optimize_and_compare_chain": 0}


@dataclass(frozen=True)
class SimulatedEvent:
    user_id: str
    event_type: str
    occurred_at: datetime | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmentDelta:
    entered: list[m.Segment]
    exited: list[m.Segment]
    unchanged_count: int


def both_histories(event: SimulatedEvent, occurred_at: datetime, received_at: datetime) -> EventSource:
    """The user's stored events under both labels plus the simulated event under `simulated`."""
    stored = (
        "SELECT event_type, occurred_at, received_at, payload FROM events "
        "WHERE tenant_id = {tenant_id:UInt64} AND user_id = {src_user_id:String}"
    )
    relation = (
        f"(SELECT arrayJoin(['{REAL}', '{SIMULATED}']) AS user_id, event_type, occurred_at, received_at, payload "
        f"FROM ({stored}) "
        f"UNION ALL SELECT '{SIMULATED}' AS user_id, {{src_event_type:String}} AS event_type, "
        "{src_occurred_at:DateTime64(3, 'UTC')} AS occurred_at, {src_received_at:DateTime64(3, 'UTC')} AS received_at, "
        "{src_payload:String} AS payload)"
    )
    return EventSource(
        relation,
        f"user_id IN ('{REAL}', '{SIMULATED}')",
        {
            "src_user_id": event.user_id,
            "src_event_type": event.event_type,
            "src_occurred_at": occurred_at,
            "src_received_at": received_at,
            "src_payload": orjson.dumps(dict(event.payload)).decode(),
        },
    )


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
    parsed = [
        (s, parse_definition(s.definition))
        for s in active
        if s.definition is not None and s.segment_type != "lookalike"
    ]
    defined = [s for s, _ in parsed]
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    # Most of an evaluation is ClickHouse analysing the SQL, in proportion to the segments in it, so
    # only the segments the event can change are evaluated: while the real history is in the universe
    # (has an event at or before `at`), both histories hold the same rows of every other event type,
    # hence the same aggregates, so every other segment is unchanged. Otherwise even unrelated segments
    # can be entered (the user joins the universe), and all of them are evaluated.
    everything = [(s.id, d) for s, d in parsed]
    evaluated = [(sid, d) for sid, d in everything if _affected_by(d, event.event_type)]
    if len(evaluated) < len(everything) and not _in_universe(wh, event.user_id, at):
        evaluated = everything
    members = _members(wh, evaluated, both_histories(event, occurred_at, received_at), at, runtime.settings)
    entered = [s for s in defined if s.id in members[SIMULATED] - members[REAL]]
    exited = [s for s in defined if s.id in members[REAL] - members[SIMULATED]]
    return SegmentDelta(entered, exited, len(active) - len(entered) - len(exited))


def _affected_by(definition: SegmentDefinition, event_type: str) -> bool:
    """Whether an event of `event_type` can change any aggregate the definition's conditions use."""
    for condition in conditions(definition):
        if isinstance(condition, UserProperty):
            if event_type == PROPERTIES_EVENT_TYPE:
                return True
        elif condition.event_type == event_type:
            return True
    return False


def _in_universe(wh: TenantWarehouse, user_id: str, at: datetime) -> bool:
    """Whether the user's stored history has an event at or before `at` (the compiler's universe)."""
    found = wh.query(
        "SELECT 1 FROM events WHERE tenant_id = {tenant_id:UInt64} AND user_id = {user_id:String} "
        "AND occurred_at <= {at:DateTime64(3, 'UTC')} LIMIT 1",
        {"user_id": user_id, "at": at},
    )
    return bool(found.rows)


def _members(
    wh: TenantWarehouse,
    segments: list[tuple[int, SegmentDefinition]],
    source: EventSource,
    at: datetime,
    settings: Settings,
) -> dict[str, set[int]]:
    """Label (`real`/`simulated`) → ids of the segments it is in (empty for a label outside the universe)."""
    members: dict[str, set[int]] = {REAL: set(), SIMULATED: set()}
    if not segments:
        return members
    query = compile_segments(segments, source, members_only=False)
    bounded = limited(query.sql, settings, settings.request_max_execution_seconds, **_SETTINGS)
    result = wh.query(bounded, query.bind(at))
    for row in result.dicts():
        members[row["user_id"]] = {sid for sid, column in query.columns.items() if row[column]}
    return members
