"""Delta ≡ full: after random event batches and clock advances (including advances with no new
events, late events and events dated in the future), delta membership equals a full compute at the
same `now`, and both equal the reference evaluator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segops.compute import engine, plan
from segops.compute.engine import Request
from segops.localstack import LocalStack
from segops.membership import store

from tests.integration.dsl.strategies import EVENT_TYPES, NOW, USERS, WINDOWS, definitions, payloads
from tests.support.dsl_reference import Event, members
from tests.support.events import fresh_tenant, insert_events
from tests.support.segments import put_segment

DAY_MS = 86_400_000
_edges = sorted({0, 1, -1, *(s * round(w * DAY_MS) + d for w in WINDOWS for s in (-1, 1) for d in (-1, 0, 1))})
offsets = st.one_of(st.sampled_from(_edges), st.integers(-40 * DAY_MS, DAY_MS))
advances = st.one_of(st.sampled_from([0, 1, *(round(w * DAY_MS) for w in WINDOWS)]), st.integers(0, 3 * DAY_MS))


def batches(max_size: int) -> st.SearchStrategy[list[tuple[str, str, int, dict[str, Any]]]]:
    return st.lists(
        st.tuples(st.sampled_from(USERS), st.sampled_from(EVENT_TYPES), offsets, payloads), max_size=max_size
    )


# Mostly pure passage of time after an initial history: that is where a delta can go wrong.
steps = st.lists(st.tuples(st.one_of(st.just([]), batches(2)), advances), min_size=1, max_size=5)


@pytest.fixture
def no_arrival_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    # In production a margin re-checks recent arrivals (inserts in flight); here every insert is
    # complete before the next compute, so without it the time-crossing logic alone must be right.
    monkeypatch.setattr(plan, "ARRIVAL_MARGIN", timedelta(0))


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(first=definitions(3), second=definitions(3), initial=batches(12), script=steps)
def test_delta_equals_full_after_batches_and_clock_advances(
    stack: LocalStack,
    no_arrival_margin: None,
    first: dict[str, Any],
    second: dict[str, Any],
    initial: list[tuple[str, str, int, dict[str, Any]]],
    script: list[tuple[list[tuple[str, str, int, dict[str, Any]]], int]],
) -> None:
    # GIVEN two definitions, each as a delta-computed and a fully computed segment
    runtime = stack.runtime
    tenant = fresh_tenant()
    for segment_id, definition in ((1, first), (2, second), (3, first), (4, second)):
        put_segment(runtime, tenant, segment_id, definition)
    history: list[Event] = []
    now = NOW
    received = NOW - timedelta(days=60)
    for batch, advance in [(initial, 0), *script]:
        # WHEN a batch arrives (possibly empty, late or future-dated) and the clock advances
        events = []
        for user, kind, offset, payload in batch:
            received += timedelta(seconds=1)
            events.append(Event(user, kind, now + timedelta(milliseconds=offset), received, payload))
        insert_events(runtime.warehouse, tenant, events)
        history.extend(events)
        now += timedelta(milliseconds=advance)
        engine.compute(runtime, tenant, [Request(1, "delta"), Request(2, "delta")], now)
        engine.compute(runtime, tenant, [Request(3, "full"), Request(4, "full")], now)
        # THEN delta == full == reference, and the recorded count matches
        for delta_id, full_id, definition in ((1, 3, first), (2, 4, second)):
            delta = set(store.iter_members(runtime.warehouse, tenant, delta_id))
            assert delta == set(store.iter_members(runtime.warehouse, tenant, full_id))
            assert delta == members(history, definition, now)
            assert store.member_count(runtime.warehouse, tenant, delta_id) == len(delta)
