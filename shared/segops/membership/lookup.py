"""`GET /api/segments/membership/?user_id=`: which segments a user is in, served from the cache.

Cache entries (5-minute TTL):
- `membership:<tenant_id>:<user_id>` → JSON list of segment ids from the latest published computes;
  invalidated by segment_compute for every user whose membership changed.
- `segments:active:<tenant_id>` → JSON list of the tenant's active segment ids; invalidated by the
  segments API on every create/patch/delete and rebuilt here from the store on a miss.
Ids are always filtered by the active set at read time, so a deleted or deactivated segment
disappears immediately, even from a cached entry. A cold miss is an index lookup
(`store.segments_of_user`), never a scan.

Versioned fills: invalidating writes a tombstone (`~` and a token unique to that invalidation); a
miss remembers what the entry held (nothing, or a tombstone), reads its source and stores the answer
only if the entry still holds exactly that (`Cache.swap`, atomic). Computes commit and the segments
API writes before they invalidate, so an invalidation landing between a miss's read and its fill has
changed the entry and the fill, possibly read before the write, is dropped instead of serving the old
answer for 5 minutes. Tokens never repeat, so a later invalidation cannot look like an earlier one.

With the cache down the answer comes from the warehouse and the store (`cached: false`).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable

import orjson

from segops.cache.base import CacheUnavailable
from segops.membership.store import segments_of_user
from segops.runtime import Runtime
from segops.segments.models import Segment
from segops.store import keys

log = logging.getLogger("segops.membership.lookup")

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


def _cached(runtime: Runtime, key: str) -> tuple[bytes | None, bytes | None, bool]:
    """(the entry's value if it is one, what the entry held, whether the cache answered)."""
    try:
        seen = runtime.cache.get(key)
    except CacheUnavailable:
        return None, None, False
    if seen is not None and seen.startswith(_TOMBSTONE):
        return None, seen, True
    return seen, seen, True


def _fill(runtime: Runtime, key: str, seen: bytes | None, value: bytes, ttl: float) -> None:
    """Store a miss's answer unless the entry changed since the miss saw it (an invalidation)."""
    # The answer stands whatever happens; the next read fills the entry.
    with contextlib.suppress(CacheUnavailable):
        runtime.cache.swap(key, seen, value, ttl)


def _invalidate(runtime: Runtime, keys: Iterable[str], ttl: float) -> None:
    """Tombstone `keys` (after the write they reflect)."""
    tombstone = _TOMBSTONE + uuid.uuid4().hex.encode()
    chunk: list[str] = []
    for key in keys:
        chunk.append(key)
        if len(chunk) == _INVALIDATION_CHUNK:
            runtime.cache.set_many(dict.fromkeys(chunk, tombstone), ttl)
            chunk = []
    if chunk:
        runtime.cache.set_many(dict.fromkeys(chunk, tombstone), ttl)


def active_segment_ids(runtime: Runtime, tenant_id: int) -> set[int]:
    key = active_segments_key(tenant_id)
    cached, seen, reachable = _cached(runtime, key)
    if cached is not None:
        return set(orjson.loads(cached))
    ids = [s.id for s in active_segments(runtime, tenant_id)]
    if reachable:
        _fill(runtime, key, seen, orjson.dumps(ids), ACTIVE_TTL_SECONDS)
    return set(ids)


def user_segments(runtime: Runtime, tenant_id: int, user_id: str) -> tuple[list[int], bool]:
    """(active segment ids of the user, served from cache?)."""
    key = membership_key(tenant_id, user_id)
    cached, seen, reachable = _cached(runtime, key)
    if cached is not None:
        segment_ids: list[int] = orjson.loads(cached)
    else:
        segment_ids = segments_of_user(runtime.warehouse, tenant_id, user_id)
        if reachable:
            _fill(runtime, key, seen, orjson.dumps(segment_ids), MEMBERSHIP_TTL_SECONDS)
    active = active_segment_ids(runtime, tenant_id)
    return [s for s in segment_ids if s in active], cached is not None


def invalidate_users(runtime: Runtime, tenant_id: int, user_ids: Iterable[str]) -> None:
    """After a compute committed. With the cache down the compute still delivers its change (connectors
    must not wait for the cache): lookups meanwhile read the warehouse, and an entry that outlived the
    outage (a partition, not a restart) expires within its TTL."""
    try:
        _invalidate(runtime, (membership_key(tenant_id, u) for u in user_ids), MEMBERSHIP_TTL_SECONDS)
    except CacheUnavailable:
        log.warning("cache unavailable: membership entries not invalidated", extra={"tenant_id": tenant_id})


def invalidate_active(runtime: Runtime, tenant_id: int) -> None:
    """After a segment write. With the cache down the write still succeeds, as in `invalidate_users`."""
    try:
        _invalidate(runtime, [active_segments_key(tenant_id)], ACTIVE_TTL_SECONDS)
    except CacheUnavailable:
        log.warning("cache unavailable: active segments not invalidated", extra={"tenant_id": tenant_id})
