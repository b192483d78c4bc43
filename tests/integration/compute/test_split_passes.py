"""A tenant whose segments do not fit in one statement (ClickHouse's `max_query_size`, 256 KiB by
default) is computed in several statements, published as one compute."""

from __future__ import annotations

from typing import Any

import pytest
from segops.compute import engine
from segops.compute.plan import Request
from segops.dsl import compile_segments, parse_definition
from segops.localstack import LocalStack
from segops.membership import store
from segops.warehouse import TenantWarehouse

from tests.integration.dsl.strategies import NOW
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events
from tests.support.segments import put_segment

SEGMENTS = 24


def large(k: int) -> dict[str, Any]:
    """50 conditions of 4 property filters each, none shared with another segment (about 29 KB of SQL)."""
    return {
        "logic": "OR",
        "conditions": [
            {
                "type": "event_count",
                "event_type": f"e{k}_{i}",
                "operator": "gte",
                "value": 1,
                "window_days": 30,
                "where": [{"property": f"p{j}", "operator": "eq", "value": f"v{k}"} for j in range(4)],
            }
            for i in range(50)
        ],
    }


def test_segments_beyond_one_statement_are_computed_in_several(stack: LocalStack) -> None:
    # GIVEN 24 large segments, and for each a user who matches it and only it
    tenant = fresh_tenant()
    for k in range(SEGMENTS):
        put_segment(stack.runtime, tenant, k + 1, large(k))
    insert_events(
        stack.runtime.warehouse,
        tenant,
        [Event(f"u{k}", f"e{k}_{k}", NOW, NOW, {f"p{j}": f"v{k}" for j in range(4)}) for k in range(SEGMENTS)],
    )
    # (in one statement they are refused by the warehouse)
    together = compile_segments([(k + 1, parse_definition(large(k))) for k in range(SEGMENTS)])
    assert len(together.sql.encode()) > 256 * 1024
    with pytest.raises(Exception, match=r"(?i)max query size"):
        TenantWarehouse(stack.runtime.warehouse, tenant).query(together.sql, together.bind(NOW))
    # WHEN they are all computed at once
    outcomes = engine.compute(stack.runtime, tenant, [Request(k + 1, "full", f"c{k}") for k in range(SEGMENTS)], NOW)
    # THEN every segment succeeded with its own user, in one publication (one version per segment)
    assert [o.status for o in outcomes] == ["succeeded"] * SEGMENTS
    for k in range(SEGMENTS):
        assert set(store.iter_members(stack.runtime.warehouse, tenant, k + 1)) == {f"u{k}"}
    assert store.segments_of_user(stack.runtime.warehouse, tenant, "u5") == [6]
