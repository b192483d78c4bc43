"""The per-tenant compute queue: merging requests, debounce coverage, requeue on failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from segops import clock
from segops.bus.base import Topic
from segops.compute import engine, runner
from segops.compute.plan import Request
from segops.localstack import LocalStack
from segops.messages import DrainRequested, ScheduledTick, SegmentComputeEnvelope, SegmentComputeMessage
from segops.runtime import Runtime
from segops.store import keys

from tests.support.events import fresh_tenant


def queue(stack: LocalStack, tenant: int) -> runner.TenantQueue:
    found = stack.runtime.documents.load(keys.compute_queue_key(tenant), runner.TenantQueue)
    assert found is not None
    return found


def test_requests_merge_and_full_wins(stack: LocalStack) -> None:
    tenant = fresh_tenant()
    runner.request_segment(stack.runtime, tenant, 1, "full", "a")
    runner.request_segment(stack.runtime, tenant, 1, "delta", "b")
    runner.request_segment(stack.runtime, tenant, 2, "delta", None)
    pending = queue(stack, tenant).segments
    assert (pending[1].mode, pending[1].compute_id, pending[2].mode) == ("full", "b", "delta")
    assert tenant in runner.tenants_with_queues(stack.runtime)


def test_first_notice_fixes_the_due_time_and_covered_notices_are_dropped(stack: LocalStack) -> None:
    tenant = fresh_tenant()
    first = datetime(2026, 1, 1, tzinfo=UTC)
    assert runner.notice_users_changed(stack.runtime, tenant, first)
    assert runner.notice_users_changed(stack.runtime, tenant, first + timedelta(seconds=1))
    due = queue(stack, tenant).active_delta_due
    assert due == first + timedelta(seconds=stack.settings.compute_debounce_seconds)
    stack.runtime.documents.update(
        keys.compute_queue_key(tenant),
        runner.TenantQueue,
        lambda q: q.model_copy(update={"covered_until": first + timedelta(seconds=5), "active_delta_due": None}),
    )
    assert not runner.notice_users_changed(stack.runtime, tenant, first + timedelta(seconds=4))
    assert queue(stack, tenant).active_delta_due is None
    assert runner.notice_users_changed(stack.runtime, tenant, first + timedelta(seconds=6))


def test_failed_work_goes_back_on_the_queue_and_the_lease_is_released(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = fresh_tenant()
    runner.request_segment(stack.runtime, tenant, 5, "full", "c")

    def broken(*args: object, **kwargs: object) -> list[engine.Outcome]:
        raise RuntimeError("warehouse down")

    monkeypatch.setattr(engine, "compute", broken)
    with pytest.raises(RuntimeError):
        runner.drain(stack.runtime, tenant)
    left = queue(stack, tenant)
    assert left.holder is None and left.segments[5].mode == "full"


def test_work_taken_by_a_holder_that_never_finished_is_run_by_the_next(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a segment request and a due "users changed" delta, taken by a holder that then died (or
    # could not put them back: the store failing as well as the warehouse)
    tenant = fresh_tenant()
    runner.request_segment(stack.runtime, tenant, 5, "full", "c5")
    published = clock.now() - timedelta(minutes=1)
    assert runner.notice_users_changed(stack.runtime, tenant, published)
    assert runner._acquire(stack.runtime, tenant, "dead")
    taken = runner._take(stack.runtime, tenant, "dead")
    assert isinstance(taken, runner.TenantQueue) and 5 in taken.segments
    stack.runtime.documents.update(
        keys.compute_queue_key(tenant),
        runner.TenantQueue,
        lambda q: q.model_copy(update={"lease_until": clock.now() - timedelta(seconds=1)}),
    )
    # WHEN the notice is redelivered THEN it is covered by the taken delta (not queued twice) ...
    assert not runner.notice_users_changed(stack.runtime, tenant, published)
    # ... AND the next holder runs what the dead one took: the segment, and the delta
    ran: list[list[Request]] = []
    monkeypatch.setattr(engine, "compute", lambda runtime, tenant_id, requests: ran.append(list(requests)) or [])
    runner.drain(stack.runtime, tenant)
    assert [[(r.segment_id, r.mode, r.compute_id) for r in requests] for requests in ran] == [[(5, "full", "c5")]]
    left = queue(stack, tenant)
    assert left.taken is None and left.holder is None and not left.has_work()
    assert left.covered_until is not None and left.covered_until >= published


def test_a_failed_compute_whose_work_cannot_be_put_back_leaves_it_taken_for_the_next_holder(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = fresh_tenant()
    runner.request_segment(stack.runtime, tenant, 5, "full", "c5")
    real_change = runner._change

    def warehouse_and_store_down(*args: object, **kwargs: object) -> list[engine.Outcome]:
        monkeypatch.setattr(runner, "_change", broken_change)
        raise ConnectionError("warehouse down")

    def broken_change(*args: object, **kwargs: object) -> runner.TenantQueue:
        raise ConnectionError("store down")

    monkeypatch.setattr(engine, "compute", warehouse_and_store_down)
    monkeypatch.setattr(runner, "RELEASE_WAITS", ())
    with pytest.raises(ConnectionError):
        runner.drain(stack.runtime, tenant)
    # THEN the work is still in the document, taken, not lost
    monkeypatch.setattr(runner, "_change", real_change)
    left = queue(stack, tenant)
    assert left.taken is not None and 5 in left.taken.segments and left.has_work()


def _segment_compute_messages(stack: LocalStack) -> list[SegmentComputeMessage]:
    heard: list[SegmentComputeMessage] = []
    stack.bus.subscribe(
        Topic.SEGMENT_COMPUTE,
        "recorder",
        lambda m: heard.append(SegmentComputeEnvelope.model_validate_json(m.data).message),
    )
    return heard


def test_the_scheduler_tick_becomes_one_tick_per_tenant(stack: LocalStack) -> None:
    # GIVEN two tenants with compute queues
    tenants = [fresh_tenant(), fresh_tenant()]
    for tenant in tenants:
        runner.request_time_delta(stack.runtime, tenant)
    heard = _segment_compute_messages(stack)
    # WHEN Cloud Scheduler's tenant-less tick is handled
    stack.publish_schedules()
    stack.bus.drain()
    # THEN each tenant got a tick of its own, and each tick ran (and emptied) its tenant's queue and
    # compacted its membership log
    ticks = [m.tenant_id for m in heard if isinstance(m, ScheduledTick) and m.tenant_id in tenants]
    assert sorted(ticks) == sorted(tenants)
    done = [queue(stack, tenant) for tenant in tenants]
    assert all(not q.has_work() and q.holder is None and q.compacted_at is not None for q in done)
    # AND the next compaction waits for `membership_history_hours`
    assert not runner.compact_if_due(stack.runtime, tenants[0])


def test_a_holder_out_of_budget_hands_the_rest_over(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a queued compute and a debounced delta due later, and no time budget left after one compute
    tenant = fresh_tenant()
    runner.request_segment(stack.runtime, tenant, 5, "full", "c")
    runner.notice_users_changed(stack.runtime, tenant, datetime.now(UTC))
    monkeypatch.setattr(
        stack.runtime, "settings", stack.settings.model_copy(update={"compute_drain_budget_seconds": 0.0})
    )
    heard = _segment_compute_messages(stack)
    computed: list[list[int]] = []
    compute = engine.compute

    def recorded(runtime: Runtime, tenant_id: int, requests: list[Request]) -> list[engine.Outcome]:
        computed.append([r.segment_id for r in requests])
        return compute(runtime, tenant_id, requests)

    monkeypatch.setattr(engine, "compute", recorded)
    # WHEN the holder drains
    runner.drain(stack.runtime, tenant)
    # THEN it ran the one compute, then released the lease and asked for a fresh invocation
    assert computed == [[5]]
    left = queue(stack, tenant)
    assert left.holder is None and left.active_delta_due is not None and not left.segments
    # AND that invocation (with a budget again) picks up the rest
    monkeypatch.setattr(stack.runtime, "settings", stack.settings)
    stack.bus.drain()
    assert heard == [DrainRequested(tenant_id=tenant)]
    assert computed == [[5], []] and not queue(stack, tenant).has_work()
