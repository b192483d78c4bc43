"""Quotas of a tenant's plan: events per calendar month (UTC), active segments, connectors.

Events are counted at the edge, in one cache counter per tenant and month, before anything is
published: a request's events are accepted or refused whole (429 `quota_exceeded`), and events given
back when the publish fails. The counter is the cheap gate, not the bill: it counts what the edge
accepted (a client's retry of an accepted request counts again, a lost cache restarts it at zero);
the events stored in the warehouse are the authoritative count.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from segops import clock
from segops.cache.base import CacheUnavailable
from segops.errors import PlanLimitReached, QuotaExceeded
from segops.limits.plans import plan_of
from segops.runtime import Runtime

log = logging.getLogger("segops.limits")

# A month's counter outlives the month by this much, so a late reader still finds it.
_COUNTER_GRACE = timedelta(days=7)


def _month(now: datetime) -> tuple[str, datetime]:
    """The month of `now` as `YYYY-MM` and the instant the next one starts."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return start.strftime("%Y-%m"), following


def events_key(tenant_id: int, month: str) -> str:
    return f"quota:events:{tenant_id}:{month}"


def events_this_month(runtime: Runtime, tenant_id: int) -> int | None:
    """This month's count, or None while the cache that holds it is unreachable (quotas fail open)."""
    month, _ = _month(clock.now())
    try:
        counted = runtime.cache.get(events_key(tenant_id, month))
    except CacheUnavailable:
        log.warning("events quota of tenant %s unreadable: the cache is unavailable", tenant_id)
        return None
    return int(counted) if counted is not None else 0


def reserve_events(runtime: Runtime, tenant_id: int, count: int) -> str | None:
    """Count `count` events against this month's quota, or `QuotaExceeded` with none counted. Returns the
    counter to give them back to (`release_events`) if they are not published; None if nothing was
    counted (the cache is down: quotas fail open, like rate limits)."""
    now = clock.now()
    month, following = _month(now)
    key = events_key(tenant_id, month)
    try:
        limit = plan_of(runtime, tenant_id).events_per_month
        ttl = (following - now + _COUNTER_GRACE).total_seconds()
        added, total = runtime.cache.add_within(key, count, limit, ttl)
    except CacheUnavailable:
        log.warning("event quota not applied: the cache is unavailable", extra={"tenant_id": tenant_id})
        return None
    if not added:
        raise QuotaExceeded(
            f"the monthly quota of {limit} events is used up; it renews on {following:%Y-%m-%d} (UTC)",
            retry_after=max(1, int((following - now).total_seconds())),
            details={"limit": limit, "used": total, "requested": count, "resets_at": following.isoformat()},
        )
    return key


def release_events(runtime: Runtime, key: str | None, count: int) -> None:
    """Give back events `reserve_events` counted that were then not accepted (best effort)."""
    if key is None:
        return
    try:
        runtime.cache.add_within(key, -count, 0, 1)
    except CacheUnavailable:
        log.warning("event quota not released: the cache is unavailable", extra={"key": key})


def check_room(
    runtime: Runtime, tenant_id: int, resource: Literal["active_segments", "connectors"], current: int
) -> None:
    """`PlanLimitReached` unless the plan allows one more `resource` (`active_segments`, `connectors`)
    besides the `current` ones."""
    limit: int = getattr(plan_of(runtime, tenant_id), resource)
    if current + 1 > limit:
        raise PlanLimitReached(
            f"the plan allows {limit} {resource.replace('_', ' ')}; remove one or ask for a larger plan",
            {"resource": resource, "limit": limit, "current": current},
        )
