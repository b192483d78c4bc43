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
from typing import Any


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
