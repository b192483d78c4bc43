"""A tenant whose segments do not fit in one statement (ClickHouse's `max_query_size`, 256 KiB by
default; on a ClickHouse server also its 1,000 HTTP request fields, one per bound parameter) is
computed in several statements, published as one compute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from segops.compute import engine
from segops.compute.evaluate import MAX_STATEMENT_PARAMS
from segops.compute.plan import Request
from segops.dsl import compile_segments, parse_definition
from segops.localstack import LocalStack
from segops.membership import store
from segops.metering.meter import close_meter
from segops.warehouse import TenantWarehouse
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse

from tests.integration.dsl.strategies import NOW
from tests.support.clickhouse_http import HTTP_MAX_FIELDS, ChdbHttpServer
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


@pytest.fixture
def served(stack: LocalStack, clickhouse_http: ChdbHttpServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The stack talking to a ClickHouse server (the HTTP protocol, with its field limits, on the same engine)."""
    warehouse = ClickHouseWarehouse(clickhouse_http.url, "default", "", stack.settings.clickhouse_database)
    monkeypatch.setattr(stack.runtime, "warehouse", warehouse)
    yield stack
    close_meter(stack.runtime)  # its meter writes to `warehouse`: last write first
    warehouse.close()


def small(k: int) -> dict[str, Any]:
    condition = {"type": "event_count", "event_type": f"e{k}", "operator": "gte", "value": 1, "window_days": 30}
    return {"logic": "AND", "conditions": [condition]}


def test_many_small_segments_stay_within_a_servers_request_fields(
    served: LocalStack, clickhouse_http: ChdbHttpServer
) -> None:
    # GIVEN 600 small segments on a ClickHouse server (together ~1,200 bound parameters, ~125 KB of
    # SQL: under max_query_size, over the server's 1,000 request fields), a user matching every 50th
    tenant = fresh_tenant()
    count = 600
    for k in range(count):
        put_segment(served.runtime, tenant, k + 1, small(k))
    matched = range(0, count, 50)
    insert_events(served.runtime.warehouse, tenant, [Event(f"u{k}", f"e{k}", NOW, NOW, {}) for k in matched])
    together = compile_segments([(k + 1, parse_definition(small(k))) for k in range(count)])
    assert len(together.bind(NOW)) + count > HTTP_MAX_FIELDS  # its parameters, and each segment's id
    sent = len(clickhouse_http.requests)
    # WHEN they are all computed at once
    outcomes = engine.compute(served.runtime, tenant, [Request(k + 1, "full", f"c{k}") for k in range(count)], NOW)
    # THEN every segment succeeded, each matched user is in its segment only
    assert [o.status for o in outcomes] == ["succeeded"] * count
    for k in matched:
        assert store.segments_of_user(served.runtime.warehouse, tenant, f"u{k}") == [k + 1]
    # AND no request carried more bound parameters than a statement may
    params = [sum(name.startswith("param_") for name in r["params"]) for r in clickhouse_http.requests[sent:]]
    assert max(params) <= MAX_STATEMENT_PARAMS + 2  # plus the user range of a split by users


def heavy(k: int) -> dict[str, Any]:
    """`large(k)` whose first condition also needs one of 1,000 page paths: ~140 KB of parameter,
    ~400 KB once URL-encoded (a quote is escaped, then encoded as %5C%27; a slash as %2F)."""
    definition = large(k)
    urls = [f"/k{k}/{n:04d}" + "'/" * 45 for n in range(1000)]
    definition["conditions"][0]["where"] = [{"property": "url", "operator": "in", "value": urls}]
    return definition


def test_segments_with_long_lists_stay_within_a_servers_uri(served: LocalStack) -> None:
    # GIVEN 8 segments of ~39 KB of SQL and ~140 KB of parameters each, on a ClickHouse server: a
    # statement over 128 KiB sends its parameters in the URL, which the server reads up to 1 MiB
    tenant = fresh_tenant()
    count = 8
    for k in range(count):
        put_segment(served.runtime, tenant, k + 1, heavy(k))
    events = [
        Event(f"u{k}", f"e{k}_0", NOW, NOW, {"url": heavy(k)["conditions"][0]["where"][0]["value"][500]})
        for k in range(count)
    ]
    insert_events(served.runtime.warehouse, tenant, events)
    # WHEN they are all computed at once
    outcomes = engine.compute(served.runtime, tenant, [Request(k + 1, "full", f"c{k}") for k in range(count)], NOW)
    # THEN every segment succeeded with its own user
    assert [o.status for o in outcomes] == ["succeeded"] * count
    for k in range(count):
        assert set(store.iter_members(served.runtime.warehouse, tenant, k + 1)) == {f"u{k}"}
