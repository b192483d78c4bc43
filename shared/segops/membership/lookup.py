"""`GET /api/segments/membership/?user_id=`: which segments a user is in, served from the cache.

Cache entries (5-minute TTL):
- `membership:<tenant_id>:<user_id>` → JSON list of segment ids from the latest published computes;
  dropped by segment_compute for every user whose membership changed.
- `segments:active:<tenant_id>` → JSON list of the tenant's active segment ids; dropped by the
  segments API on every create/patch/delete and read here on a miss from the active-segment index
  (`segops.segments.active`, one store read).
Ids are always filtered by the active set at read time, so a deleted or deactivated segment
disappears immediately, even from a cached entry. A cold miss is an index lookup
(`store.segments_of_user`), never a scan.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from segops.membership.store import segments_of_user
from segops.runtime import Runtime
from segops.segments.active import active_segments

MEMBERSHIP_TTL_SECONDS = 300.0
ACTIVE_TTL_SECONDS = 300.0
_INVALIDATION_CHUNK = 500


def membership_key(tenant_id: int, user_id: str) -> str:
    return f"membership:{tenant_id}:{user_id}"


def active_segments_key(tenant_id: int) -> str:
    return f"segments:active:{tenant_id}"


def active_segment_ids(runtime: Runtime, tenant_id: int) -> set[int]:
    key = active_segments_key(tenant_id)
    cached = runtime.cache.get(key)
    if cached is not None:
        return set(orjson.loads(cached))
    ids = [s.id for s in active_segments(runtime, tenant_id)]
    runtime.cache.set(key, orjson.dumps(ids), ACTIVE_TTL_SECONDS)
    return set(ids)


def user_segments(runtime: Runtime, tenant_id: int, user_id: str) -> tuple[list[int], bool]:
    """(active segment ids of the user, served from cache?)."""
    key = membership_key(tenant_id, user_id)
    cached = runtime.cache.get(key)
    if cached is not None:
        segment_ids: list[int] = orjson.loads(cached)
    else:
        segment_ids = segments_of_user(runtime.warehouse, tenant_id, user_id)
        runtime.cache.set(key, orjson.dumps(segment_ids), MEMBERSHIP_TTL_SECONDS)
    active = active_segment_ids(runtime, tenant_id)
    return [s for s in segment_ids if s in active], cached is not None


def invalidate_users(runtime: Runtime, tenant_id: int, user_ids: Iterable[str]) -> None:
    chunk: list[str] = []
    for user_id in user_ids:
        chunk.append(membership_key(tenant_id, user_id))
        if len(chunk) == _INVALIDATION_CHUNK:
            runtime.cache.delete(*chunk)
            chunk = []
    if chunk:
        runtime.cache.delete(*chunk)
