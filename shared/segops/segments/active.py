"""The active-segment index: one control-plane document per tenant (`keys.active_index_key`) holding
what evaluating each active segment needs, so the sandbox, the compute planner, lookalike requests
and the membership lookup read the active set in one request instead of listing and loading every
segment document (on GCS one list plus one GET per segment).

The segments service calls `refresh` after every segment write: it sets that segment's entry from
the segment document as it is then, by compare-and-swap on the index, reading the segment inside
each attempt *after* the index. Concurrent writers converge: a segment write that lands after
another writer's read of it is refreshed after that read too, and either its index write follows
the other's or one of the two swaps fails and retries with fresh reads.

A writer that dies between its segment write and `refresh` (a killed instance, a timeout) must
not leave the entry stale for good, so a write that changes the segment's entry first `mark`s the
index: a pending write of that segment, which its `refresh` removes. Readers that find marks read
those segments' documents (an answer as fresh as the documents), and a mark older than
`ABANDONED_AFTER` (its writer is gone) is repaired: the entry refreshed, the mark removed. A write
that leaves the entry as it was (an inactive segment edited, a description changed) needs no mark
and writes nothing to the index, which keeps the index document under GCS's rate of writes per
object.

A missing index (a deployment from before it, or deleted by an operator to force a rebuild) is
rebuilt from the segment documents by whoever needs it first, create-only: a rebuild that loses
the race takes the winner's, which every segment write since its listing refreshes in turn.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from segops import clock
from segops.errors import Conflict
from segops.runtime import Runtime
from segops.segments.models import Segment, SegmentType
from segops.store import keys


class ActiveSegment(BaseModel):
    """An active segment as its evaluators need it (a lookalike's seed is in its definition)."""

    id: int
    name: str
    segment_type: SegmentType
    version: int
    definition: dict[str, Any] | None


class PendingWrite(BaseModel):
    """A segment write that may change the segment's entry, from `mark` until its `refresh`."""

    segment_id: int
    token: str  # this write's own mark: concurrent writes of one segment each remove only theirs
    since: datetime


class ActiveIndex(BaseModel):
    segments: list[ActiveSegment]  # ascending id
    pending: list[PendingWrite] = []


# Well past the API function's 60 s timeout (functions/manifest.json): a write marked this long ago
# will never refresh its entry.
ABANDONED_AFTER = timedelta(minutes=5)


def active_segments(runtime: Runtime, tenant_id: int) -> list[ActiveSegment]:
    """The tenant's active segments by ascending id: one document read (plus one per pending write)."""
    index = _load(runtime, tenant_id)
    if not index.pending:
        return index.segments
    now = clock.now()
    abandoned = [p for p in index.pending if now - p.since > ABANDONED_AFTER]
    for segment_id in sorted({p.segment_id for p in abandoned}):
        refresh(runtime, tenant_id, segment_id, [p.token for p in abandoned if p.segment_id == segment_id])
    if abandoned:
        index = _load(runtime, tenant_id)
    # Writes in flight (or abandoned since this read): their segments as the documents say now.
    entries = {s.id: s for s in index.segments}
    for segment_id in {p.segment_id for p in index.pending}:
        entries.pop(segment_id, None)
        entry = _entry(runtime.documents.load(keys.segment_key(tenant_id, segment_id), Segment), tenant_id)
        if entry is not None:
            entries[segment_id] = entry
    return sorted(entries.values(), key=lambda s: s.id)


def changes_entry(tenant_id: int, before: Segment | None, after: Segment | None) -> bool:
    """Whether writing `after` over `before` changes the segment's entry (so needs a `mark` first)."""
    return _entry(before, tenant_id) != _entry(after, tenant_id)


def mark(runtime: Runtime, tenant_id: int, segment_id: int) -> str:
    """Record a write of the segment about to happen; its token goes to `refresh` after the write."""
    pending = PendingWrite(segment_id=segment_id, token=uuid.uuid4().hex, since=clock.now())

    def change(index: ActiveIndex) -> ActiveIndex:
        return index.model_copy(update={"pending": [*index.pending, pending]})

    for _ in range(3):
        if runtime.documents.update(keys.active_index_key(tenant_id), ActiveIndex, change) is not None:
            return pending.token
        _rebuild(runtime, tenant_id)  # missing: created (by this rebuild or a racing one), then marked
    raise Conflict("the active-segment index keeps disappearing", {"tenant": tenant_id})


def refresh(runtime: Runtime, tenant_id: int, segment_id: int, tokens: Collection[str] = ()) -> None:
    """Make the index agree with segment `segment_id`'s document (after a write to it) and remove the
    marks `tokens` of that write."""
    segment_key = keys.segment_key(tenant_id, segment_id)

    def change(index: ActiveIndex) -> ActiveIndex:
        entry = _entry(runtime.documents.load(segment_key, Segment), tenant_id)
        others = [s for s in index.segments if s.id != segment_id]
        updated = ActiveIndex(
            segments=sorted([*others, entry], key=lambda s: s.id) if entry else others,
            pending=[p for p in index.pending if p.token not in tokens],
        )
        if updated == index:
            raise _Unchanged
        return updated

    key = keys.active_index_key(tenant_id)
    # At most: missing, created by a rebuild racing ours (stale for this segment), then updated.
    for _ in range(3):
        try:
            if runtime.documents.update(key, ActiveIndex, change) is not None:
                return
        except _Unchanged:
            return
        if _rebuild(runtime, tenant_id) is not None:
            return  # listed after the segment write: it holds the segment as written
    raise Conflict("the active-segment index keeps disappearing", {"tenant": tenant_id})


def _load(runtime: Runtime, tenant_id: int) -> ActiveIndex:
    index = runtime.documents.load(keys.active_index_key(tenant_id), ActiveIndex)
    if index is None:
        index = _rebuild(runtime, tenant_id) or runtime.documents.load(keys.active_index_key(tenant_id), ActiveIndex)
    return index if index is not None else ActiveIndex(segments=[])


class _Unchanged(Exception):
    """The index already agrees with the segment (an inactive segment edited, a description changed):
    no write, which keeps the index document under GCS's rate of writes per object."""


def _entry(segment: Segment | None, tenant_id: int) -> ActiveSegment | None:
    if segment is None or not segment.active or segment.tenant != tenant_id:
        return None
    return ActiveSegment(
        id=segment.id,
        name=segment.name,
        segment_type=segment.segment_type,
        version=segment.version,
        definition=segment.definition,
    )


def _rebuild(runtime: Runtime, tenant_id: int) -> ActiveIndex | None:
    """Create the index from the segment documents; None if another writer created it first."""
    listed = runtime.documents.list(keys.segments_prefix(tenant_id), Segment)
    entries = [e for e in (_entry(s, tenant_id) for s in listed) if e is not None]
    index = ActiveIndex(segments=sorted(entries, key=lambda s: s.id))
    try:
        runtime.documents.create(keys.active_index_key(tenant_id), index)
    except Conflict:
        return None
    return index
