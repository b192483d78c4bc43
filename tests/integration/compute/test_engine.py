"""Full and delta computes write versioned membership that readers only see once published."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from segops.compute import engine
from segops.compute.engine import Request
from segops.localstack import LocalStack
from segops.membership import store
from segops.messages import MembershipChanged
from segops.segments.models import ComputeState
from segops.store import keys

from tests.integration.dsl.strategies import NOW
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events
from tests.support.segments import put_segment

COUNT_A = {"logic": "AND", "conditions": [{"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}]}


def ev(user: str, kind: str = "a", at: timedelta = timedelta(0), payload: dict[str, Any] | None = None) -> Event:
    return Event(user, kind, NOW - at, NOW - at, payload or {})


def members(stack: LocalStack, tenant: int, segment: int, snapshot: int | None = None) -> set[str]:
    return set(store.iter_members(stack.runtime.warehouse, tenant, segment, snapshot, page_size=2))


def state(stack: LocalStack, tenant: int, segment: int) -> ComputeState:
    found = stack.runtime.documents.load(keys.compute_state_key(tenant, segment), ComputeState)
    assert found is not None
    return found


def test_full_compute_publishes_members_changes_and_state(stack: LocalStack) -> None:
    # GIVEN three users, two of whom did `a`
    tenant = fresh_tenant()
    insert_events(stack.runtime.warehouse, tenant, [ev("u1"), ev("u2"), ev("u3", "b")])
    put_segment(stack.runtime, tenant, 1, COUNT_A)
    heard: list[MembershipChanged] = []
    stack.bus.subscribe(
        "membership-changes", "test", lambda m: heard.append(MembershipChanged.model_validate_json(m.data))
    )
    # WHEN the segment is computed
    [outcome] = engine.compute(stack.runtime, tenant, [Request(1, "full", "c1")], NOW)
    # THEN members, the diff of that compute, its counts and the compute state agree
    assert outcome.status == "succeeded"
    assert members(stack, tenant, 1) == {"u1", "u2"}
    assert store.member_count(stack.runtime.warehouse, tenant, 1) == 2
    assert store.changes(stack.runtime.warehouse, tenant, 1, "c1") == store.ChangeSet(["u1", "u2"], [])
    assert store.segments_of_user(stack.runtime.warehouse, tenant, "u1") == [1]
    done = state(stack, tenant, 1)
    assert (done.status, done.mode, done.member_count, done.entered_count, done.exited_count) == (
        "succeeded",
        "full",
        2,
        2,
        0,
    )
    assert done.last_computed_at == NOW and done.snapshot is not None and done.watermark is not None
    # AND connectors hear about it
    stack.bus.drain()
    assert [(m.segment_id, m.compute_id, m.entered_count, m.exited_count) for m in heard] == [(1, "c1", 2, 0)]


def test_failed_compute_keeps_previous_membership(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a published membership {u1}
    tenant = fresh_tenant()
    insert_events(stack.runtime.warehouse, tenant, [ev("u1")])
    put_segment(stack.runtime, tenant, 1, COUNT_A)
    engine.compute(stack.runtime, tenant, [Request(1, "full", "c1")], NOW)
    # WHEN the next compute dies after writing its diff rows but before publishing them
    insert_events(stack.runtime.warehouse, tenant, [ev("u2")])

    insert = stack.runtime.warehouse.insert

    def crash_on_commit(table: str, *args: Any) -> None:
        if table == "membership_commits":
            raise ConnectionError("warehouse went away")
        insert(table, *args)

    monkeypatch.setattr(stack.runtime.warehouse, "insert", crash_on_commit)
    with pytest.raises(ConnectionError):  # an outage: the whole request is retried
        engine.compute(stack.runtime, tenant, [Request(1, "full", "c2")], NOW + timedelta(minutes=1))
    monkeypatch.undo()
    # THEN readers still see exactly the previous membership, and the failure is recorded
    assert members(stack, tenant, 1) == {"u1"}
    assert store.segments_of_user(stack.runtime.warehouse, tenant, "u2") == []
    failed = state(stack, tenant, 1)
    # (tenants read a generic message with an incident id; the exception text stays in the logs)
    assert failed.status == "failed" and failed.error is not None
    assert "warehouse went away" not in failed.error and "ConnectionError" not in failed.error
    [logged] = [r for r in caplog.records if r.getMessage() == "compute failed"]
    assert f"incident {logged.__dict__['incident']}" in failed.error
    assert failed.last_computed_at == NOW
    assert (failed.entered_count, failed.exited_count) == (None, None)  # not the earlier run's counts
    # AND the next compute publishes correctly, ignoring the orphaned rows
    engine.compute(stack.runtime, tenant, [Request(1, "full", "c3")], NOW + timedelta(minutes=2))
    assert members(stack, tenant, 1) == {"u1", "u2"}
    assert store.changes(stack.runtime.warehouse, tenant, 1, "c3") == store.ChangeSet(["u2"], [])


def test_a_segment_that_cannot_be_computed_fails_alone(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN two segments computed in one pass, one of whose statements the server refuses (too slow,
    # too large: an error of that segment, not an outage)
    tenant = fresh_tenant()
    insert_events(stack.runtime.warehouse, tenant, [ev("u1"), ev("u2", "b")])
    count_b = {**COUNT_A, "conditions": [{**COUNT_A["conditions"][0], "event_type": "b"}]}
    put_segment(stack.runtime, tenant, 1, COUNT_A)
    put_segment(stack.runtime, tenant, 2, count_b)
    evaluate = engine.evaluate

    def refuse_segment_2(runtime: Any, tenant_id: int, work: Any, *args: Any) -> Any:
        if 2 in {t.segment.id for t in work.targets}:
            raise ValueError("Code: 159. TIMEOUT_EXCEEDED")
        return evaluate(runtime, tenant_id, work, *args)

    monkeypatch.setattr(engine, "evaluate", refuse_segment_2)
    # WHEN both are computed THEN nothing raises: segment 1 is published, segment 2 failed on its own
    outcomes = engine.compute(stack.runtime, tenant, [Request(1, "full", "c1"), Request(2, "full", "c2")], NOW)
    assert {(o.segment_id, o.status) for o in outcomes} == {(1, "succeeded"), (2, "failed")}
    assert members(stack, tenant, 1) == {"u1"}
    assert (state(stack, tenant, 1).status, state(stack, tenant, 2).status) == ("succeeded", "failed")
    assert "TIMEOUT_EXCEEDED" not in (state(stack, tenant, 2).error or "")
    # AND an outage still fails the whole request, to be retried
    monkeypatch.setattr(engine, "evaluate", lambda *args: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.raises(ConnectionError):
        engine.compute(stack.runtime, tenant, [Request(1, "full", "c3"), Request(2, "full", "c4")], NOW)


def test_pinned_snapshot_survives_a_new_compute(stack: LocalStack) -> None:
    # GIVEN members u1..u4 published, and a reader holding page 1 of snapshot S
    tenant = fresh_tenant()
    insert_events(stack.runtime.warehouse, tenant, [ev(f"u{i}") for i in range(1, 5)])
    put_segment(stack.runtime, tenant, 1, {**COUNT_A, "conditions": [{**COUNT_A["conditions"][0], "window_days": 1}]})
    engine.compute(stack.runtime, tenant, [Request(1, "full")], NOW)
    first = store.members_page(stack.runtime.warehouse, tenant, 1, None, 2)
    assert [m.user_id for m in first.members] == ["u1", "u2"]
    # WHEN a compute lands mid-pagination (time passes: everyone exits; u0 enters)
    insert_events(stack.runtime.warehouse, tenant, [ev("u0", at=-timedelta(days=2))])
    engine.compute(stack.runtime, tenant, [Request(1, "delta")], NOW + timedelta(days=2))
    # THEN the pinned cursor continues the old snapshot, and the latest shows the new state
    second = store.members_page(stack.runtime.warehouse, tenant, 1, first.next_after, 2, first.snapshot)
    assert [m.user_id for m in second.members] == ["u3", "u4"] and second.next_after is None
    assert members(stack, tenant, 1) == {"u0"}
    assert store.member_count(stack.runtime.warehouse, tenant, 1, first.snapshot) == 4
    assert store.member_count(stack.runtime.warehouse, tenant, 1) == 1


def test_deactivated_or_definitionless_segments(stack: LocalStack) -> None:
    tenant = fresh_tenant()
    insert_events(stack.runtime.warehouse, tenant, [ev("u1")])
    put_segment(stack.runtime, tenant, 1, None)
    [outcome] = engine.compute(stack.runtime, tenant, [Request(1, "full")], NOW)
    assert outcome.status == "failed" and state(stack, tenant, 1).error == "segment has no definition"
    assert engine.compute(stack.runtime, tenant, [Request(99, "full")], NOW) == []


def test_a_compute_refused_after_a_run_shows_nothing_of_that_run(stack: LocalStack) -> None:
    # GIVEN a segment computed once, whose definition then goes away
    tenant = fresh_tenant()
    insert_events(stack.runtime.warehouse, tenant, [ev("u1")])
    put_segment(stack.runtime, tenant, 1, COUNT_A)
    engine.compute(stack.runtime, tenant, [Request(1, "full")], NOW)
    assert state(stack, tenant, 1).entered_count == 1
    put_segment(stack.runtime, tenant, 1, None)
    # WHEN the next compute is refused before it starts
    engine.compute(stack.runtime, tenant, [Request(1, "full")], NOW + timedelta(minutes=1))
    # THEN its state is its own: failed, never started, no duration or counts of the earlier run
    refused = state(stack, tenant, 1)
    assert (refused.status, refused.error) == ("failed", "segment has no definition")
    assert (refused.started_at, refused.duration_ms, refused.entered_count, refused.exited_count) == (None,) * 4
    # AND the membership that stands is still described
    assert refused.member_count == 1 and refused.last_computed_at == NOW
