"""Where a compiled segment reads events from.

- `StoredEvents` (`tenant_events()`, the delta compute's candidates): the tenant's stored events,
  which the compiler reads through the per-user day states kept at write time (docs/design.md §6),
  optionally only for the users a `user_id` predicate selects.
- `EventSource`: any relation of rows with the columns `user_id, event_type, occurred_at,
  received_at, payload` (the `events` table's names and types), aggregated raw.

The compiler adds `occurred_at <= {now:DateTime64(3)}` and the per-user aggregation; a source only
decides which rows exist. Source parameters are prefixed `src_` so they never collide with the
compiler's `p<n>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from segops.config import Settings
from segops.warehouse import TenantWarehouse
from segops.warehouse.limits import split_points


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


def user_ranges(source: StoredEvents, points: Sequence[str]) -> list[StoredEvents]:
    """`source` cut at `points` (user ids, ascending in the warehouse's order): users before the first,
    between each two, from the last on. Each user is in exactly one range."""
    bounds: list[str | None] = [None, *points, None]
    found = []
    for low, high in pairwise(bounds):
        users, params = [f"({source.users})"] if source.users else [], dict(source.params)
        if low is not None:
            users.append("user_id >= {src_from:String}")
            params["src_from"] = low
        if high is not None:
            users.append("user_id < {src_to:String}")
            params["src_to"] = high
        found.append(StoredEvents(" AND ".join(users) or None, params))
    return found


def split_by_users(
    wh: TenantWarehouse, source: StoredEvents, users: int | None, aggregates: int, settings: Settings
) -> list[StoredEvents]:
    """`source` as ranges of users whose `aggregates` states each fit in memory without spilling
    (`segops.warehouse.limits.split_points`; `users` when known, e.g. a delta's candidates): `[source]`
    when one statement fits."""
    scope = "tenant_id = {tenant_id:UInt64}" + (f" AND {source.users}" if source.users else "")
    points = split_points(wh, scope, source.params, users, aggregates, settings)
    return user_ranges(source, points) if points else [source]
