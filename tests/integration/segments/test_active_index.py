"""The active-segment index (`segops.segments.active`): one store read for the active set, kept by
every segment write, rebuilt once when missing, convergent under concurrent writers on real GCS,
and healed after a writer died between its segment write and the index update."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from segops import clock
from segops.localstack import LocalStack
from segops.runtime import Runtime
from segops.segments import active, service
from segops.segments.active import ABANDONED_AFTER, ActiveIndex, ActiveSegment, active_segments
from segops.segments.models import Segment
from segops.store import keys
from segops.store.gcs import GcsStore

from tests.support.stores import CountingStore

TENANT = 7
AT = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


def definition(value: int) -> dict[str, Any]:
    return {"conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": value}]}


def create(runtime: Runtime, name: str, *, active: bool = True) -> Segment:
    return service.create_segment(
        runtime, TENANT, name=name, segment_type="rule", description="", active=active, created_by=None
    )


def from_documents(runtime: Runtime) -> list[ActiveSegment]:
    """What the index must hold: every active segment document of the tenant, as the evaluators need it."""
    segments = runtime.documents.list(keys.segments_prefix(TENANT), Segment)
    return [
        ActiveSegment(id=s.id, name=s.name, segment_type=s.segment_type, version=s.version, definition=s.definition)
        for s in sorted(segments, key=lambda s: s.id)
        if s.active
    ]


def counted(runtime: Runtime) -> tuple[Runtime, CountingStore]:
    store = CountingStore(runtime.store)
    return replace(runtime, store=store), store


def stored_index(runtime: Runtime) -> ActiveIndex:
    found = runtime.documents.load(keys.active_index_key(TENANT), ActiveIndex)
    assert found is not None
    return found


class Killed(BaseException):
    """The API process dying: nothing after it runs, not even the service's error handling."""


def dies_before_the_index_update(monkeypatch: pytest.MonkeyPatch, write: Callable[[], object]) -> None:
    """Run a segment write whose process dies right after its segment document is written."""

    def die(*args: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(active, "refresh", die)
        with pytest.raises(Killed):
            write()


def test_the_index_follows_every_segment_write(stack: LocalStack) -> None:
    runtime = stack.runtime
    # GIVEN an active and an inactive segment
    first = create(runtime, "first")
    second = create(runtime, "second", active=False)
    assert active_segments(runtime, TENANT) == [
        ActiveSegment(id=first.id, name="first", segment_type="rule", version=0, definition=None)
    ]
    # WHEN the active one is renamed and given a definition THEN its entry carries both, versioned
    service.update_segment(runtime, TENANT, first.id, {"name": "renamed"}, definition=definition(1), actor=None)
    assert active_segments(runtime, TENANT) == [
        ActiveSegment(id=first.id, name="renamed", segment_type="rule", version=1, definition=definition(1))
    ]
    # WHEN the other is activated and the first deactivated THEN only the other is listed
    service.update_segment(runtime, TENANT, second.id, {"active": True}, actor=None)
    assert [s.id for s in active_segments(runtime, TENANT)] == [first.id, second.id]
    service.update_segment(runtime, TENANT, first.id, {"active": False}, actor=None)
    assert [s.id for s in active_segments(runtime, TENANT)] == [second.id]
    # WHEN it is deleted THEN the set is empty, and at every step it matched the documents
    service.delete_segment(runtime, TENANT, second.id)
    assert active_segments(runtime, TENANT) == from_documents(runtime) == []


def test_reading_the_active_set_is_one_store_read(stack: LocalStack) -> None:
    # GIVEN 20 active segments with definitions
    for index in range(20):
        made = create(stack.runtime, f"s{index}")
        service.update_segment(stack.runtime, TENANT, made.id, {}, definition=definition(index), actor=None)
    runtime, store = counted(stack.runtime)
    # WHEN the active set is read THEN that is one GET, nothing listed
    assert active_segments(runtime, TENANT) == from_documents(stack.runtime)
    assert store.calls == {"get": 1}


def test_a_write_that_leaves_the_active_set_as_it_was_does_not_write_the_index(stack: LocalStack) -> None:
    # GIVEN an inactive segment and an active one
    inactive = create(stack.runtime, "inactive", active=False)
    live = create(stack.runtime, "live")
    runtime, store = counted(stack.runtime)
    # WHEN the inactive one gets a definition and the active one a new description
    service.update_segment(runtime, TENANT, inactive.id, {}, definition=definition(3), actor=None)
    service.update_segment(runtime, TENANT, live.id, {"description": "evaluated as before"}, actor=None)
    # THEN only the segment documents and the version were written, not the index
    assert store.calls["put"] == 3
    assert [s.id for s in active_segments(runtime, TENANT)] == [live.id]


def test_a_missing_index_is_rebuilt_once_from_the_segment_documents(stack: LocalStack) -> None:
    # GIVEN segments written while the index existed, then the index gone (a deployment from before it)
    made = [create(stack.runtime, f"s{index}", active=index != 1) for index in range(3)]
    service.update_segment(stack.runtime, TENANT, made[0].id, {}, definition=definition(5), actor=None)
    stack.runtime.store.delete(keys.active_index_key(TENANT))
    runtime, store = counted(stack.runtime)
    # WHEN the active set is read THEN it is rebuilt from the documents: one listing, one create
    assert [s.id for s in active_segments(runtime, TENANT)] == [made[0].id, made[2].id]
    assert active_segments(stack.runtime, TENANT) == from_documents(stack.runtime)
    assert (store.calls["list"], store.calls["put"]) == (1, 1)
    # AND the next read is one GET again
    store.calls.clear()
    active_segments(runtime, TENANT)
    assert store.calls == {"get": 1}


def test_a_write_against_a_missing_index_rebuilds_it_with_that_write(stack: LocalStack) -> None:
    runtime = stack.runtime
    made = [create(runtime, f"s{index}", active=False) for index in range(3)]
    runtime.store.delete(keys.active_index_key(TENANT))
    service.update_segment(runtime, TENANT, made[1].id, {"active": True}, definition=definition(2), actor=None)
    assert [(s.id, s.definition) for s in active_segments(runtime, TENANT)] == [(made[1].id, definition(2))]


def test_concurrent_activations_and_rebuilds_converge_on_gcs(
    stack: LocalStack, gcs_client: Any, gcs_bucket: str
) -> None:
    # GIVEN the control plane on the GCS JSON API, 12 inactive segments and no index yet
    runtime = replace(stack.runtime, store=GcsStore(gcs_client, gcs_bucket))
    made = [create(runtime, f"s{index}", active=False) for index in range(12)]
    runtime.store.delete(keys.active_index_key(TENANT))
    # WHEN 8 are activated with a definition at once, while readers race to rebuild the index
    with ThreadPoolExecutor(8) as pool:
        writes = [
            pool.submit(
                service.update_segment, runtime, TENANT, s.id, {"active": True}, definition=definition(i), actor=None
            )
            for i, s in enumerate(made[:8])
        ]
        reads = [pool.submit(active_segments, runtime, TENANT) for _ in range(4)]
        for future in [*writes, *reads]:
            future.result()
    # THEN the index holds exactly those 8, each at its new definition, as the documents say
    expected = from_documents(runtime)
    assert [s.id for s in expected] == [s.id for s in made[:8]]
    assert all(s.version == 1 for s in expected)
    assert active_segments(runtime, TENANT) == expected
    # WHEN 4 of them are deactivated and 2 others activated at once THEN it still agrees
    with ThreadPoolExecutor(6) as pool:
        changes = [(s.id, False) for s in made[:4]] + [(s.id, True) for s in made[8:10]]
        for future in [
            pool.submit(service.update_segment, runtime, TENANT, sid, {"active": on}, actor=None) for sid, on in changes
        ]:
            future.result()
    assert [s.id for s in active_segments(runtime, TENANT)] == [s.id for s in made[4:10]]
    assert active_segments(runtime, TENANT) == from_documents(runtime)
    # WHEN one segment's definition is changed by 6 writers at once THEN its entry is the version that won
    target = made[4].id
    with ThreadPoolExecutor(6) as pool:
        for future in [
            pool.submit(service.update_segment, runtime, TENANT, target, {}, definition=definition(100 + i), actor=None)
            for i in range(6)
        ]:
            future.result()
    final = service.get_segment(runtime, TENANT, target)
    entry = next(s for s in active_segments(runtime, TENANT) if s.id == target)
    assert (entry.version, entry.definition) == (final.version, final.definition)
    assert final.version == 7
    # AND every write removed its mark
    assert stored_index(runtime).pending == []


def test_a_writer_that_died_before_the_index_update_leaves_no_stale_entry(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = stack.runtime
    with clock.frozen(AT):
        # GIVEN an active segment, one with a definition, an inactive one, and one to delete
        kept = create(runtime, "kept")
        edited = create(runtime, "edited")
        service.update_segment(runtime, TENANT, edited.id, {}, definition=definition(1), actor=None)
        dormant = create(runtime, "dormant", active=False)
        doomed = create(runtime, "doomed")
        # WHEN four API calls each die between their segment write and the index update: a create, a
        # definition change, an activation and a delete
        dies_before_the_index_update(monkeypatch, lambda: create(runtime, "born"))
        dies_before_the_index_update(
            monkeypatch,
            lambda: service.update_segment(runtime, TENANT, edited.id, {}, definition=definition(2), actor=None),
        )
        dies_before_the_index_update(
            monkeypatch, lambda: service.update_segment(runtime, TENANT, dormant.id, {"active": True}, actor=None)
        )
        dies_before_the_index_update(monkeypatch, lambda: service.delete_segment(runtime, TENANT, doomed.id))
        # THEN readers already see the active set the documents hold (new segment, version 2,
        # activation, deletion), not the index's stale entries
        expected = from_documents(runtime)
        assert [s.id for s in expected][:3] == [kept.id, edited.id, dormant.id]
        assert [s.name for s in expected] == ["kept", "edited", "dormant", "born"]
        assert active_segments(runtime, TENANT) == expected
        assert next(s for s in expected if s.id == edited.id).definition == definition(2)
        # AND within the grace of a write that may still be running, the marks stay (readers write nothing)
        assert len(stored_index(runtime).pending) == 4
    with clock.frozen(AT + ABANDONED_AFTER + timedelta(seconds=1)):
        # WHEN the next reader comes once the writers are surely gone
        assert active_segments(runtime, TENANT) == expected
    # THEN it repaired the index document itself: the documents' entries, no marks, one GET per read again
    assert stored_index(runtime) == ActiveIndex(segments=expected)
    counting, store = counted(runtime)
    assert active_segments(counting, TENANT) == expected
    assert store.calls == {"get": 1}


def test_a_write_that_fails_removes_its_mark(stack: LocalStack) -> None:
    # GIVEN an active segment, then a PATCH of it that fails after marking (the segment vanished)
    made = create(stack.runtime, "made")

    original = active.mark

    def mark_then_vanish(runtime: Runtime, tenant_id: int, segment_id: int) -> str:
        token = original(runtime, tenant_id, segment_id)
        stack.runtime.documents.delete(keys.segment_key(TENANT, made.id))
        return token

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(active, "mark", mark_then_vanish)
        with pytest.raises(Exception, match="segment not found"):
            service.update_segment(stack.runtime, TENANT, made.id, {"active": False}, actor=None)
    # THEN the index agrees with the documents and holds no mark
    assert stored_index(stack.runtime) == ActiveIndex(segments=[])
