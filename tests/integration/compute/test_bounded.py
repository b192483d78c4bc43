"""Computes run within the configured memory: a tenant whose per-user states do not fit in it is
computed in parts by user (chDB honours the limits like a ClickHouse server)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from segops.compute import engine
from segops.compute.evaluate import _candidate_source, _stage_results
from segops.compute.plan import Request
from segops.config import Settings
from segops.dsl import StoredEvents, compile_segments, parse_definition, tenant_events
from segops.dsl.sources import user_ranges
from segops.localstack import LocalStack
from segops.membership import store
from segops.warehouse import TenantWarehouse
from segops.warehouse.limits import limited

from tests.integration.dsl.strategies import NOW
from tests.support.events import fresh_tenant
from tests.support.segments import put_segment

# 200k users' 12 aggregates need ~60 MB in one pass; the limit is 30 MB.
USERS = 200_000
REGULARS = 1_000
TYPES = 12
MEMORY = 30_000_000
# Did one of twelve things twice within a month (twelve windows: twelve aggregates per user).
TWICE = {
    "logic": "OR",
    "conditions": [
        {"type": "event_count", "event_type": f"e{i}", "operator": "gte", "value": 2, "window_days": 30 + i}
        for i in range(TYPES)
    ],
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"query_max_memory_bytes": MEMORY})


def test_a_tenant_larger_than_the_memory_limit_completes(stack: LocalStack, settings: Settings) -> None:
    # GIVEN a tenant whose per-user states do not fit in the memory limit: every user did one of
    # twelve things yesterday, a thousand regulars did theirs a second time
    tenant = fresh_tenant()
    wh = TenantWarehouse(stack.runtime.warehouse, tenant)
    wh.command(
        "INSERT INTO events (tenant_id, event_id, message_id, user_id, event_type, occurred_at, received_at, payload) "
        "SELECT {tenant_id:UInt64}, generateUUIDv4(), '', concat('user-', toString(number % {users:UInt64})) AS user, "
        "concat('e', toString(cityHash64(user) % {types:UInt64})), {at:DateTime64(3, 'UTC')}, "
        "{at:DateTime64(3, 'UTC')}, '{}' FROM numbers({rows:UInt64}) WHERE {tenant_id:UInt64} > 0",
        {"users": USERS, "types": TYPES, "rows": USERS + REGULARS, "at": NOW - timedelta(days=1)},
    )
    put_segment(stack.runtime, tenant, 1, TWICE)
    # (the whole pass in one statement does not complete within the limit, spilling or not)
    sql, params = _stage_results(compile_segments([(1, parse_definition(TWICE))]), NOW)
    with pytest.raises(Exception, match="MEMORY_LIMIT_EXCEEDED"):
        wh.command(limited(sql, settings, 60), {**params, "stage_id": "one-statement"})
    # WHEN it is computed within that limit
    [outcome] = engine.compute(stack.runtime, tenant, [Request(1, "full")], NOW)
    # THEN the compute completed in parts: the regulars are the members, each once
    assert outcome.status == "succeeded"
    members = list(store.iter_members(stack.runtime.warehouse, tenant, 1))
    assert sorted(members) == sorted(f"user-{i}" for i in range(REGULARS))
    assert store.member_count(stack.runtime.warehouse, tenant, 1) == REGULARS


def test_the_parts_of_a_pass_together_are_the_whole_pass(stack: LocalStack) -> None:
    # GIVEN 60 users with events of their type over the last 40 days, and a delta's candidates
    tenant = fresh_tenant()
    wh = TenantWarehouse(stack.runtime.warehouse, tenant)
    wh.command(
        "INSERT INTO events (tenant_id, event_id, message_id, user_id, event_type, occurred_at, received_at, payload) "
        "SELECT {tenant_id:UInt64}, generateUUIDv4(), '', concat('user-', toString(number % 60)) AS user, "
        "concat('e', toString(cityHash64(user) % 12)), subtractHours({now:DateTime64(3, 'UTC')}, number % 960) AS at, "
        "at, '{}' FROM numbers(500) WHERE {tenant_id:UInt64} > 0",
        {"now": NOW},
    )
    wh.command(
        "INSERT INTO compute_candidates (tenant_id, compute_id, user_id) "
        "SELECT {tenant_id:UInt64}, 'candidates', concat('user-', toString(number * 3)) FROM numbers(20)"
    )
    definitions = [(1, parse_definition(TWICE))]

    def staged(source: StoredEvents) -> list[str]:
        stage = f"s{next(stages)}"
        sql, params = _stage_results(compile_segments(definitions, source), NOW)
        wh.command(sql, {**params, "stage_id": stage})
        rows = wh.query(
            "SELECT user_id FROM compute_results WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage:String}",
            {"stage": stage},
        ).rows
        return sorted(str(user) for (user,) in rows)

    stages = iter(range(100))
    points = ["user-17", "user-33", "user-5"]  # byte order: user-1..., user-17..., user-33..., user-5...
    for source in (tenant_events(), _candidate_source("candidates")):
        # WHEN the pass is split at those users
        whole, parts = staged(source), [staged(part) for part in user_ranges(source, points)]
        # THEN every member is in exactly one part
        assert whole and all(parts)
        assert sorted(user for part in parts for user in part) == whole
