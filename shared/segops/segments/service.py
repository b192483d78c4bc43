"""Segment documents: CRUD, immutable definition versions, the active-segment index.

Every segment write (create, patch, delete) that changes the segment's entry in the tenant's
active-segment index (`segops.segments.active`) marks the index first; every write then refreshes
the index (removing its mark) and only then invalidates the `segments:active:<tenant>` cache key
(`segops.membership.lookup`), so neither the membership lookup nor the sandbox or a compute sees a
deleted or deactivated segment, or an old definition, once the write has returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from segops import clock
from segops.errors import Conflict, NotFound, PreconditionFailed
from segops.limits import quotas
from segops.membership.lookup import active_segment_ids, invalidate_active
from segops.runtime import Runtime
from segops.segments import active as active_index
from segops.segments import models as m
from segops.store import keys
from segops.store.base import GenerationMismatch


@dataclass(frozen=True)
class Page:
    items: list[m.Segment]
    next_after: int | None  # the last id returned when more follow; None on the last page


def _segment_ids(runtime: Runtime, tenant_id: int) -> list[int]:
    prefix = keys.segments_prefix(tenant_id)
    ids = []
    for key in runtime.store.list(prefix):
        tail = key[len(prefix) :]
        if tail.isdigit():
            ids.append(int(tail))
    return sorted(ids)


def etag(segment: m.Segment) -> str:
    """The segment's entity tag (a quoted strong `ETag`): a digest of the stored document, so it changes
    with every write to the segment (name, description, active, definition) and with nothing else
    (a compute finishing leaves it as it was)."""
    return '"' + hashlib.sha256(segment.model_dump_json().encode()).hexdigest()[:32] + '"'


def check_if_match(if_match: str | None, segment: m.Segment) -> None:
    """Raise `PreconditionFailed` unless `if_match` (an `If-Match` header: `*` or a list of entity
    tags, compared strongly, so `W/` tags never match) names `segment` as it is; None always holds."""
    if if_match is None:
        return
    current = etag(segment)
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" not in tags and current not in tags:
        raise _changed(segment)


def _changed(segment: m.Segment) -> PreconditionFailed:
    return PreconditionFailed(
        "the segment has changed since it was read: load it again, then apply the change",
        {"etag": etag(segment), "version": segment.version},
    )


def get_segment(runtime: Runtime, tenant_id: int, segment_id: int) -> m.Segment:
    found = runtime.documents.load(keys.segment_key(tenant_id, segment_id), m.Segment)
    if found is None:
        raise NotFound("segment not found", {"id": segment_id})
    return found


def compute_state(runtime: Runtime, tenant_id: int, segment_id: int) -> m.ComputeState | None:
    return runtime.documents.load(keys.compute_state_key(tenant_id, segment_id), m.ComputeState)


def list_segments(
    runtime: Runtime,
    tenant_id: int,
    *,
    limit: int,
    after: int = 0,
    segment_type: m.SegmentType | None = None,
    active: bool | None = None,
) -> Page:
    """Segments with ids above `after` in ascending order, filtered."""
    items: list[m.Segment] = []
    for segment_id in _segment_ids(runtime, tenant_id):
        if segment_id <= after:
            continue
        segment = runtime.documents.load(keys.segment_key(tenant_id, segment_id), m.Segment)
        if segment is None:
            continue
        if segment_type is not None and segment.segment_type != segment_type:
            continue
        if active is not None and segment.active != active:
            continue
        if len(items) == limit:
            return Page(items, items[-1].id)
        items.append(segment)
    return Page(items, None)


def _refresh_active(runtime: Runtime, tenant_id: int, segment_id: int, marks: list[str]) -> None:
    """After a write to the segment: its index entry follows it (the write's `marks` removed), then the
    lookup's cached ids are invalidated."""
    active_index.refresh(runtime, tenant_id, segment_id, marks)
    invalidate_active(runtime, tenant_id)


class _Unmarked(Exception):
    """The segment write changes the segment's active-index entry: the index is marked first."""


class _Unchanged(Exception):
    """The write would leave the segment as it is: nothing is written (its `ETag` stays)."""

    def __init__(self, segment: m.Segment) -> None:
        self.segment = segment


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: `True` is not `1` (nor `{"value": true}` `{"value": 1}`), as in the DSL."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


def _check_active_room(runtime: Runtime, tenant_id: int) -> None:
    """One more active segment must fit the plan (409 `plan_limit_reached`). Checked before the write,
    so two concurrent activations can both pass: the cap is a plan bound, not an invariant."""
    quotas.check_room(runtime, tenant_id, "active_segments", len(active_segment_ids(runtime, tenant_id)))


def create_segment(
    runtime: Runtime,
    tenant_id: int,
    *,
    name: str,
    segment_type: m.SegmentType,
    description: str,
    active: bool,
    created_by: str | None,
    definition: dict[str, Any] | None = None,
    prompt: str | None = None,
) -> m.Segment:
    """A new segment, with its first definition (version 1) if given. It appears whole: the version
    is written first, then the segment naming it, so a failure between the two leaves no segment
    without the definition it was created with (a version no segment names is never read)."""
    if active:
        _check_active_room(runtime, tenant_id)
    segment = m.Segment(
        id=runtime.documents.new_id("segments"),
        tenant=tenant_id,
        name=name,
        description=description,
        segment_type=segment_type,
        active=active,
        created_by=created_by,
    )
    if definition is not None:
        version = m.SegmentVersion(
            segment_id=segment.id, version=1, definition=definition, created_by=created_by, prompt=prompt
        )
        runtime.documents.create(keys.segment_version_key(tenant_id, segment.id, 1), version)
        segment = segment.model_copy(update={"definition": definition, "version": 1})
    marks = (
        [active_index.mark(runtime, tenant_id, segment.id)]
        if active_index.changes_entry(tenant_id, None, segment)
        else []
    )
    try:
        runtime.documents.create(keys.segment_key(tenant_id, segment.id), segment)
    finally:
        _refresh_active(runtime, tenant_id, segment.id, marks)
    return segment


def update_segment(
    runtime: Runtime,
    tenant_id: int,
    segment_id: int,
    changes: dict[str, Any],
    *,
    definition: dict[str, Any] | None = None,
    prompt: str | None = None,
    actor: str | None,
    if_match: str | None = None,
) -> m.Segment:
    """Apply plain field `changes`; a `definition` that differs from the current one becomes a new version
    (with the `prompt` it was drafted from, for `ai` segments). With `if_match` (`check_if_match`),
    only if the segment is still as the caller read it. Values are compared as JSON (`_same`); a call
    that changes nothing writes nothing, so the segment's `updated_at` and `ETag` stay as they were.

    The version document is created first (create-only, so two writers can never share a
    number); the segment then points at it with a CAS update that never moves backwards. A
    precondition that fails at that update (another write won the race) removes the version
    again: it never became the segment's.
    """
    current = get_segment(runtime, tenant_id, segment_id)
    check_if_match(if_match, current)
    if changes.get("active") and not current.active:
        _check_active_room(runtime, tenant_id)
    version: m.SegmentVersion | None = None
    if definition is not None and not _same(definition, current.definition):
        version = _new_version(runtime, tenant_id, segment_id, definition, prompt, actor)

    marks: list[str] = []

    def change(segment: m.Segment) -> m.Segment:
        check_if_match(if_match, segment)  # on the very document this write replaces
        update = {key: value for key, value in changes.items() if not _same(getattr(segment, key), value)}
        if version is not None and version.version > segment.version:
            update["definition"] = version.definition
            update["version"] = version.version
        if not update:
            raise _Unchanged(segment)
        update["updated_at"] = clock.now()
        updated = segment.model_copy(update=update)
        # Decided on the very document this write replaces, so a write judged not to change the
        # entry cannot, whatever other writers did (they mark for their own changes).
        if not marks and active_index.changes_entry(tenant_id, segment, updated):
            raise _Unmarked
        return updated

    try:
        while True:
            try:
                updated = runtime.documents.update(keys.segment_key(tenant_id, segment_id), m.Segment, change)
                break
            except _Unchanged as unchanged:
                updated = unchanged.segment
                break
            except _Unmarked:
                marks.append(active_index.mark(runtime, tenant_id, segment_id))
    except PreconditionFailed:
        if version is not None:
            runtime.documents.delete(keys.segment_version_key(tenant_id, segment_id, version.version))
        raise
    finally:
        _refresh_active(runtime, tenant_id, segment_id, marks)
    if updated is None:
        raise NotFound("segment not found", {"id": segment_id})
    return updated


def _new_version(
    runtime: Runtime,
    tenant_id: int,
    segment_id: int,
    definition: dict[str, Any],
    prompt: str | None,
    actor: str | None,
) -> m.SegmentVersion:
    for _ in range(50):
        latest = get_segment(runtime, tenant_id, segment_id).version
        taken = _version_numbers(runtime, tenant_id, segment_id)
        number = max([latest, *taken]) + 1
        version = m.SegmentVersion(
            segment_id=segment_id, version=number, definition=definition, created_by=actor, prompt=prompt
        )
        try:
            runtime.documents.create(keys.segment_version_key(tenant_id, segment_id, number), version)
        except Conflict:
            continue
        return version
    raise Conflict("too many concurrent definition changes", {"id": segment_id})


def _version_numbers(runtime: Runtime, tenant_id: int, segment_id: int) -> list[int]:
    prefix = keys.segment_versions_prefix(tenant_id, segment_id)
    return [int(k[len(prefix) :]) for k in runtime.store.list(prefix) if k[len(prefix) :].isdigit()]


def list_versions(runtime: Runtime, tenant_id: int, segment_id: int) -> list[m.SegmentVersion]:
    """Every definition the segment has had, newest first."""
    get_segment(runtime, tenant_id, segment_id)
    versions = []
    for number in sorted(_version_numbers(runtime, tenant_id, segment_id), reverse=True):
        found = runtime.documents.load(keys.segment_version_key(tenant_id, segment_id, number), m.SegmentVersion)
        if found is not None:
            versions.append(found)
    return versions


def delete_segment(runtime: Runtime, tenant_id: int, segment_id: int, if_match: str | None = None) -> None:
    """Remove the segment and its versions; lookups stop returning it at once. With `if_match`
    (`check_if_match`), only if the segment is still as the caller read it."""
    key = keys.segment_key(tenant_id, segment_id)
    stored = runtime.store.get(key)
    if stored is None:
        raise NotFound("segment not found", {"id": segment_id})
    check_if_match(if_match, m.Segment.model_validate(stored.body))
    # Always marked: an unconditional delete cannot tell which document it removes (one activated
    # since the read above would leave its entry behind).
    marks = [active_index.mark(runtime, tenant_id, segment_id)]
    try:
        if if_match is None:
            runtime.documents.delete(key)
        else:
            try:  # the document checked above, not one written since
                runtime.store.delete(key, if_generation=stored.generation)
            except GenerationMismatch:
                current = runtime.documents.load(key, m.Segment)
                if current is None:
                    raise NotFound("segment not found", {"id": segment_id}) from None
                raise _changed(current) from None
    finally:
        _refresh_active(runtime, tenant_id, segment_id, marks)
    for number in _version_numbers(runtime, tenant_id, segment_id):
        runtime.documents.delete(keys.segment_version_key(tenant_id, segment_id, number))
