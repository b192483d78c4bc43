"""`GET /api/segments/membership/?user_id=`: which segments a user is in, served from the cache.

Cache entries (5-minute TTL):
- `membership:<tenant_id>:<user_id>` → JSON list of segment ids from the latest published computes,
  or a tombstone (`~` and a token unique to one invalidation) that segment_compute writes for every
  user whose membership changed.
- `segments:active:<tenant_id>` → JSON list of the tenant's active segment ids; dropped by the
  segments API on every create/patch/delete and rebuilt here from the store on a miss.
Ids are always filtered by the active set at read time, so a deleted or deactivated segment
disappears immediately, even from a cached entry. A cold miss is an index lookup
(`store.segments_of_user`), never a scan.

Versioned fills: a miss remembers what the entry held (nothing, or a tombstone), reads the warehouse
and stores its answer only if the entry still holds exactly that (`Cache.swap`, atomic). A compute
commits before it invalidates, so an invalidation landing between the read and the fill has changed
the entry and the fill, possibly read before the commit, is dropped instead of serving stale
membership for 5 minutes. Tokens never repeat, so a later invalidation cannot look like the earlier one.

With the cache down the answer comes from the warehouse and the store (`cached: false`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable

import orjson

from segops.cache.base import CacheUnavailable
from segops.membership.store import segments_of_user
from segops.runtime import Runtime
from segops.segments.models import Segment
from segops.store import keys

MEMBERSHIP_TTL_SECONDS = 300.0
ACTIVE_TTL_SECONDS = 300.0
_INVALIDATION_CHUNK = 500
_TOMBSTONE = b"~"


def membership_key(tenant_id: int, user_id: str) -> str:
    return f"membership:{tenant_id}:{user_id}"


def active_segments_key(tenant_id: int) -> str:
    return f"segments:active:{tenant_id}"


def active_segments(runtime: Runtime, tenant_id: int) -> list[Segment]:
    """The tenant's active segments, by id (read from the control plane)."""
    found = [
        s
        for s in runtime.documents.list(keys.segments_prefix(tenant_id), Segment)
        if s.active and s.tenant == tenant_id
    ]
    return sorted(found, key=lambda s: s.id)


def active_segment_ids(runtime: Runtime, tenant_id: int) -> set[int]:
    key = active_segments_key(tenant_id)
    try:
        cached = runtime.cache.get(key)
    except CacheUnavailable:
        return {s.id for s in active_segments(runtime, tenant_id)}
    if cached is not None:
        return set(orjson.loads(cached))
    ids = [s.id for s in active_segments(runtime, tenant_id)]
    # Answered from the store whatever happens; the next read tries the cache again.
    with contextlib.suppress(CacheUnavailable):
        runtime.cache.set(key, orjson.dumps(ids), ACTIVE_TTL_SECONDS)
    return set(ids)


def user_segments(runtime: Runtime, tenant_id: int, user_id: str) -> tuple[list[int], bool]:
    """(active segment ids of the user, served from cache?)."""
    key = membership_key(tenant_id, user_id)
    try:
        seen = runtime.cache.get(key)
    except CacheUnavailable:
        seen, reachable = None, False
    else:
        reachable = True
    cached = seen is not None and not seen.startswith(_TOMBSTONE)
    if seen is not None and cached:
        segment_ids: list[int] = orjson.loads(seen)
    else:
        segment_ids = segments_of_user(runtime.warehouse, tenant_id, user_id)
        if reachable:
            # The answer stands whatever happens; the next lookup fills the entry.
            with contextlib.suppress(CacheUnavailable):
                runtime.cache.swap(key, seen, orjson.dumps(segment_ids), MEMBERSHIP_TTL_SECONDS)
    active = active_segment_ids(runtime, tenant_id)
    return [s for s in segment_ids if s in active], cached


def invalidate_users(runtime: Runtime, tenant_id: int, user_ids: Iterable[str]) -> None:
    """Tombstone the users' entries (after the compute committed). Raises `CacheUnavailable`: the
    compute's retry must invalidate again, or a fill from before its commit could outlive the outage."""
    tombstone = _TOMBSTONE + uuid.uuid4().hex.encode()
    chunk: list[str] = []
    for user_id in user_ids:
        chunk.append(membership_key(tenant_id, user_id))
        if len(chunk) == _INVALIDATION_CHUNK:
            runtime.cache.set_many(dict.fromkeys(chunk, tombstone), MEMBERSHIP_TTL_SECONDS)
            chunk = []
    if chunk:
        runtime.cache.set_many(dict.fromkeys(chunk, tombstone), MEMBERSHIP_TTL_SECONDS)
