"""Where a compiled segment reads events from.

- `StoredEvents` (`tenant_events()`, the delta compute's candidates): the tenant's stored events,
  which the compiler reads through the per-user day states kept at write time (docs/design.md §6),
  optionally only for the users a `user_id` predicate selects.
- `EventSource`: any relation of rows with the columns `user_id, event_type, occurred_at,
  received_at, payload` (the `events` table's names and types), aggregated raw — e.g. a
  hypothetical history (`with_hypothetical_events`).

The compiler adds `occurred_at <= {now:DateTime64(3)}` and the per-user aggregation; a source only
decides which rows exist. Source parameters are prefixed `src_` so they never collide with the
compiler's `p<n>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

EVENT_COLUMNS = "user_id, event_type, occurred_at, received_at, payload"


@dataclass(frozen=True)
class EventSource:
    """`FROM <relation> WHERE <predicate>`: the predicate must bind `{tenant_id:UInt64}` somewhere."""

    relation: str
    predicate: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvents:
    """The tenant's stored events; `users` (a predicate on `user_id`) restricts every table read."""

    users: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def tenant_events(user_ids: Sequence[str] | None = None) -> StoredEvents:
    """The tenant's stored events, optionally only those of `user_ids` (one-user checks)."""
    if user_ids is None:
        return StoredEvents()
    return StoredEvents("user_id IN {src_user_ids:Array(String)}", {"src_user_ids": list(user_ids)})


@dataclass(frozen=True)
class HypotheticalEvent:
    """An event that exists only for one evaluation (the sandbox); never written anywhere."""

    event_type: str
    occurred_at: datetime
    received_at: datetime
    payload: Mapping[str, Any]


def with_hypothetical_events(user_id: str, events: Sequence[HypotheticalEvent]) -> EventSource:
    """One user's real history plus `events`, all bound as parameters: "what if this also happened".

    A hypothetical `context_identified` event becomes the user's properties exactly as a real one
    would (latest by `occurred_at`, then `received_at`), because properties are derived from the
    same rows as every other condition.
    """
    params: dict[str, Any] = {"src_user_id": user_id}
    rows = []
    for index, event in enumerate(events):
        names = {column: f"src_{column}_{index}" for column in ("event_type", "occurred_at", "received_at", "payload")}
        params[names["event_type"]] = event.event_type
        params[names["occurred_at"]] = event.occurred_at
        params[names["received_at"]] = event.received_at
        params[names["payload"]] = orjson.dumps(dict(event.payload)).decode()
        rows.append(
            "SELECT {src_user_id:String} AS user_id, "
            f"{{{names['event_type']}:String}} AS event_type, "
            f"{{{names['occurred_at']}:DateTime64(3)}} AS occurred_at, "
            f"{{{names['received_at']}:DateTime64(3)}} AS received_at, "
            f"{{{names['payload']}:String}} AS payload"
        )
    stored = (
        f"SELECT {EVENT_COLUMNS} FROM events "
        "WHERE tenant_id = {tenant_id:UInt64} AND user_id = {src_user_id:String}"
    )
    relation = "(" + " UNION ALL ".join([stored, *rows]) + ")"
    return EventSource(relation, "user_id = {src_user_id:String}", params)
