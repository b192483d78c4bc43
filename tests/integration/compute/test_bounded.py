"""Computes run within the configured memory: a tenant whose aggregation exceeds it spills to disk
and completes instead of failing (chDB honours the limits like a ClickHouse server)."""

from __future__ import annotations

import pytest
from segops.compute import engine
from segops.compute.plan import Request
from segops.config import Settings
from segops.dsl import compile_segments, parse_definition
from segops.localstack import LocalStack
from segops.membership import store
from segops.warehouse import TenantWarehouse
from segops.warehouse.base import render_settings

from tests.integration.dsl.strategies import NOW
from tests.support.events import fresh_tenant
from tests.support.segments import put_segment

# 800k users' aggregation needs 100-150 MB in one hash table; the limit is 75 MB.
USERS = 800_000
REGULARS = 1_000
MEMORY = 75_000_000
THREE_AS = {"logic": "AND", "conditions": [{"type": "event_count", "event_type": "a", "operator": "gte", "value": 3}]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"query_max_memory_bytes": MEMORY})


def _insert(wh: TenantWarehouse, users: int, rows: int) -> None:
    """`rows` events over the first `users` users, two in three of them `a`."""
    wh.command(
        "INSERT INTO events (tenant_id, event_id, message_id, user_id, event_type, occurred_at, received_at, payload) "
        "SELECT {tenant_id:UInt64}, generateUUIDv4(), '', concat('user-', toString(number % {users:UInt64})), "
        "if(intDiv(number, {users:UInt64}) = 2, 'b', 'a'), {at:DateTime64(3, 'UTC')}, {at:DateTime64(3, 'UTC')}, '{}' "
        "FROM numbers({rows:UInt64}) WHERE {tenant_id:UInt64} > 0",
        {"users": users, "rows": rows, "at": NOW},
    )


def test_a_tenant_larger_than_the_memory_limit_completes(stack: LocalStack) -> None:
    # GIVEN a tenant whose per-user aggregation does not fit in the memory limit: everyone did `a`
    # twice and `b` once, a thousand regulars did `a` once more
    tenant = fresh_tenant()
    wh = TenantWarehouse(stack.runtime.warehouse, tenant)
    _insert(wh, USERS, 3 * USERS)
    _insert(wh, REGULARS, REGULARS)
    put_segment(stack.runtime, tenant, 1, THREE_AS)
    # WHEN it is computed within that limit
    [outcome] = engine.compute(stack.runtime, tenant, [Request(1, "full")], NOW)
    # THEN the compute spilled and completed: the regulars are the members
    assert outcome.status == "succeeded"
    assert store.member_count(stack.runtime.warehouse, tenant, 1) == REGULARS
    # (while the same pass, not allowed to spill, does not fit)
    compiled = compile_segments([(1, parse_definition(THREE_AS))])
    unspilled = render_settings(
        {
            "max_memory_usage": MEMORY,
            "max_bytes_before_external_group_by": 0,
            "max_bytes_ratio_before_external_group_by": 0,
        }
    )
    with pytest.raises(Exception, match="MEMORY_LIMIT_EXCEEDED"):
        wh.query(f"{compiled.sql}\nSETTINGS {unspilled}", compiled.bind(NOW))
