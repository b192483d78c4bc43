"""The per-tenant compute queue: merging requests, debounce coverage, requeue on failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from segops.compute import engine, runner
from segops.localstack import LocalStack
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
