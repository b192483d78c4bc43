"""The sandbox's one read: a primary-key range of one user's events, bounded, values bound; the same
on chDB and on a ClickHouse server (the HTTP protocol, `tests/support/clickhouse_http.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from segops.sandbox.service import HISTORY_QUERY, stored_history
from segops.warehouse import TenantWarehouse, Warehouse

from tests.support.backends import BACKENDS, fresh_database
from tests.support.events import COLUMNS, fresh_tenant
from tests.support.segment_api import event_row

AT = datetime(2026, 4, 25, 14, 0, 0, 123_000, tzinfo=UTC)
HOSTILE = "o'brien\\'; DROP TABLE events --"


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    with fresh_database(request, chdb_path) as built:
        yield built


def test_reads_one_users_events_at_or_before_now_per_event_type(warehouse: Warehouse) -> None:
    # GIVEN a hostile user id with events before, at and after `at`, a namesake in another tenant,
    # and another user of the same tenant
    tenant, other = fresh_tenant(), fresh_tenant()
    warehouse.insert(
        "events",
        COLUMNS,
        [
            event_row(tenant, HOSTILE, "order_placed", AT - timedelta(days=2), {"total": 5}),
            event_row(tenant, HOSTILE, "order_placed", AT, {"total": 7}),
            event_row(tenant, HOSTILE, "page_viewed", AT - timedelta(milliseconds=1)),
            event_row(tenant, HOSTILE, "page_viewed", AT + timedelta(milliseconds=1)),
            event_row(tenant, "someone else", "order_placed", AT - timedelta(days=1)),
            event_row(other, HOSTILE, "email_opened", AT - timedelta(days=1)),
        ],
    )
    # WHEN the sandbox reads the user's history
    history = stored_history(TenantWarehouse(warehouse, tenant), HOSTILE, AT, {"order_placed", "page_viewed"})
    # THEN it has exactly their events up to `at`, in epoch milliseconds, grouped by type
    at_ms = int(AT.timestamp() * 1000)
    assert set(history) == {"order_placed", "page_viewed"}
    orders = history["order_placed"]
    assert sorted(zip(orders.occurred_at, orders.payloads, strict=True)) == [
        (at_ms - 2 * 86_400_000, '{"total":5}'),
        (at_ms, '{"total":7}'),
    ]
    assert list(history["page_viewed"].occurred_at) == [at_ms - 1]
    assert list(history["page_viewed"].received_at) == [at_ms - 1]


def test_the_read_is_a_primary_key_range_with_resource_limits(warehouse: Warehouse) -> None:
    tenant = fresh_tenant()
    warehouse.insert("events", COLUMNS, [event_row(tenant, f"u{i}", "page_viewed", AT) for i in range(3)])
    plan = TenantWarehouse(warehouse, tenant).query(
        "EXPLAIN indexes = 1 " + HISTORY_QUERY, {"user_id": "u1", "at": AT, "types": ["page_viewed"]}
    )
    text = "\n".join(row[0] for row in plan.rows)
    # The primary key (tenant_id, user_id, ...) selects the range; both key columns are used.
    primary = text[text.index("PrimaryKey") :]
    assert "tenant_id" in primary and "(user_id in [" in primary and "(tenant_id in [" in primary, text
    assert "max_execution_time" in HISTORY_QUERY and "max_memory_usage" in HISTORY_QUERY


def test_types_no_segment_reads_are_one_placeholder_each_and_their_payloads_are_not_held(warehouse: Warehouse) -> None:
    # GIVEN a user with many large events of a type no segment names, and two orders
    tenant = fresh_tenant()
    bulky = {"blob": "x" * 30_000}
    rows = [event_row(tenant, "u", "bulk_ev", AT - timedelta(seconds=i), bulky) for i in range(300)]
    rows += [event_row(tenant, "u", "order_placed", AT - timedelta(days=d), {"total": d}) for d in (1, 2)]
    warehouse.insert("events", COLUMNS, rows)
    # WHEN the sandbox reads the history for segments that read orders only
    history = stored_history(TenantWarehouse(warehouse, tenant), "u", AT, {"order_placed"})
    # THEN orders come whole, and the other type is one event at its latest time, with no payload
    assert sorted(history["order_placed"].payloads) == ['{"total":1}', '{"total":2}']
    bulk = history["bulk_ev"]
    at_ms = int(AT.timestamp() * 1000)
    assert (list(bulk.occurred_at), list(bulk.payloads)) == ([at_ms], [""])
