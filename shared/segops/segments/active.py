"""The active-segment index: one control-plane document per tenant (`keys.active_index_key`) holding
what evaluating each active segment needs, so the sandbox, the compute planner, lookalike requests
and the membership lookup read the active set in one request instead of listing and loading every
segment document (on GCS one list plus one GET per segment).

The segments service calls `refresh` after every segment write: it sets that segment's entry from
the segment document as it is then, by compare-and-swap on the index, reading the segment inside
each attempt *after* the index. Concurrent writers converge: a segment write that lands after
another writer's read of it is refreshed after that read too, and either its index write follows
the other's or one of the two swaps fails and retries with fresh reads.

A missing index (a deployment from before it, or deleted by an operator to force a rebuild) is
rebuilt from the segment documents by whoever needs it first, create-only: a rebuild that loses
the race takes the winner's, which every segment write since its listing refreshes in turn.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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


class ActiveIndex(BaseModel):
    segments: list[ActiveSegment]  # ascending id


def active_segments(runtime: Runtime, tenant_id: int) -> list[ActiveSegment]:
    """The tenant's active segments by ascending id: one document read."""
    index = runtime.documents.load(keys.active_index_key(tenant_id), ActiveIndex)
    if index is None:
        index = _rebuild(runtime, tenant_id) or runtime.documents.load(keys.active_index_key(tenant_id), ActiveIndex)
    return index.segments if index is not None else []


def refresh(runtime: Runtime, tenant_id: int, segment_id: int) -> None:
    """Make the index agree with segment `segment_id`'s document (after a write to it)."""
    segment_key = keys.segment_key(tenant_id, segment_id)

    def change(index: ActiveIndex) -> ActiveIndex:
        entry = _entry(runtime.documents.load(segment_key, Segment), tenant_id)
        others = [s for s in index.segments if s.id != segment_id]
        updated = ActiveIndex(segments=sorted([*others, entry], key=lambda s: s.id) if entry else others)
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
