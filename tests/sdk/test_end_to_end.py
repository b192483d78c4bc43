"""The Python SDK against the whole stack (the same wiring as `make dev`) served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import pytest
from segops import clock
from segops.limits import plans
from segops.localstack import LocalStack
from segops_sdk import SegOpsClient, SegOpsError, retry

from tests.support.api import Account, Api
from tests.support.served import LossyProxy


@pytest.fixture
def account(stack: LocalStack) -> Account:
    return Api(stack).signup()


def event_type_counts(stack: LocalStack, account: Account) -> dict[str, int]:
    response = Api(stack).get("/api/ingestion/stats/?window=24h", headers=account.key)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["event_type"]: row["count"] for row in response.get_json()["event_types"]}


def test_retries_after_lost_answers_are_counted_once(stack: LocalStack, served: str, account: Account) -> None:
    # GIVEN a proxy that lets the first two requests reach the stack but loses the stack's answers
    proxy = LossyProxy(served, lose=2)
    errors: list[SegOpsError] = []
    client = SegOpsClient(proxy.url, account.api_key, on_error=errors.append)
    try:
        # WHEN 45 events and an identify are tracked and the client shuts down
        for n in range(45):
            client.track(user_id=f"user-{n}", event_type="e2e_retried", payload={"n": n})
        client.identify(user_id="user-1", traits={"plan": "starter"})
        assert client.shutdown(timeout=60)
    finally:
        proxy.close()
    # THEN the stack accepted every attempt (two of them had their answers lost: 1 or 2 batches, depending
    # on when the sender thread woke up), and the SDK saw success in the end
    assert errors == []
    assert len(proxy.upstream_statuses) >= 3
    assert set(proxy.upstream_statuses) == {202}
    # AND once the bus has delivered everything, each event is counted once
    stack.bus.drain()
    assert event_type_counts(stack, account) == {"e2e_retried": 45, "context_identified": 1}


def test_invalid_events_are_reported_and_valid_ones_arrive(stack: LocalStack, served: str, account: Account) -> None:
    errors: list[SegOpsError] = []
    client = SegOpsClient(served, account.api_key, on_error=errors.append)
    client.track(user_id="user-1", event_type="e2e_valid")
    client.track(user_id="user-1", event_type="Not-Snake-Case")
    assert client.shutdown(timeout=60)
    assert [(e.kind, e.event_count) for e in errors] == [("skipped", 1)]
    stack.bus.drain()
    assert event_type_counts(stack, account) == {"e2e_valid": 1}


def test_a_wrong_api_key_is_reported_not_retried(served: str) -> None:
    errors: list[SegOpsError] = []
    client = SegOpsClient(served, "sk_not_a_key", on_error=errors.append)
    client.track(user_id="user-1", event_type="page_viewed")
    assert client.shutdown(timeout=60)
    assert [(e.kind, e.status) for e in errors] == [("rejected", 401)]


class AdvancingClock:
    """The SDK's backoff waits advance the (frozen) clock of the whole process instead of sleeping,
    so the stack's token buckets refill exactly as much as the client waited. Started in the recent
    past and stopped (`close`) before the bus is drained: the writer's debounce needs time to pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.waits: list[float] = []
        self._stack = ExitStack()
        self._stack.enter_context(clock.frozen(clock.now() - timedelta(minutes=10)))
        monkeypatch.setattr(retry, "wait", self.wait)

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._stack.enter_context(clock.frozen(clock.now() + timedelta(seconds=seconds)))

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def advancing(monkeypatch: pytest.MonkeyPatch) -> Iterator[AdvancingClock]:
    moving = AdvancingClock(monkeypatch)
    yield moving
    moving.close()


def test_the_sdk_waits_out_the_stacks_rate_limit(
    stack: LocalStack, served: str, account: Account, advancing: AdvancingClock
) -> None:
    # GIVEN a key allowed one call a minute, already spent
    plans.set_plan(stack.runtime, account.tenant_id, {"api_calls_per_minute_per_key": 1})
    assert Api(stack).get("/api/segments/", headers=account.key).status_code == 200
    errors: list[SegOpsError] = []
    client = SegOpsClient(served, account.api_key, on_error=errors.append)
    # WHEN the SDK sends a batch
    client.track(user_id="user-1", event_type="e2e_limited")
    assert client.shutdown(timeout=60)
    # THEN it was refused with Retry-After 60, waited exactly that, and the retry was accepted
    assert advancing.waits == [60.0]
    assert errors == []
    advancing.close()
    stack.bus.drain()
    assert event_type_counts(stack, account) == {"e2e_limited": 1}


def test_the_sdk_reports_a_used_up_quota_at_once_without_retrying(
    stack: LocalStack, served: str, account: Account, advancing: AdvancingClock
) -> None:
    plans.set_plan(stack.runtime, account.tenant_id, {"events_per_month": 1})
    errors: list[SegOpsError] = []
    client = SegOpsClient(served, account.api_key, on_error=errors.append, max_retries=2)
    client.track(user_id="user-1", event_type="e2e_quota")
    client.track(user_id="user-2", event_type="e2e_quota")
    assert client.shutdown(timeout=60)
    # the month's end is weeks away: no retry can succeed, so none is made and nothing is waited for;
    # the batch is reported lost, whole, with the API's code
    assert advancing.waits == []
    assert [(e.kind, e.status, e.code, e.event_count) for e in errors] == [("rejected", 429, "quota_exceeded", 2)]
    advancing.close()
    stack.bus.drain()
    assert event_type_counts(stack, account) == {}
