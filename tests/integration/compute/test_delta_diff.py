"""A delta diffs its candidates against their previous membership read by user (`user_memberships`,
large segments) or by segment (`segment_memberships`, small ones): the same diff either way; and
migration 0620, which re-creates `user_memberships` with small granules, keeps every row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from segops.compute import engine, plan
from segops.compute.engine import Request
from segops.localstack import LocalStack
from segops.membership import store, writer
from segops.warehouse.base import Warehouse
from segops.warehouse.migrations import migrate

from tests.integration.dsl.strategies import NOW
from tests.support.backends import BACKENDS, fresh_database
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events
from tests.support.segments import put_segment

DAY = timedelta(days=1)
WEEK_OF_ORDERS = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "order", "operator": "gte", "value": 1, "window_days": 7}],
}
MEMBERSHIP_COLUMNS = ("tenant_id", "segment_id", "user_id", "version", "entered", "compute_id", "computed_at")


def order(user: str, at: timedelta) -> Event:
    return Event(user, "order", NOW + at, NOW + at, {})


@pytest.mark.parametrize("by_user", [True, False])
def test_a_delta_reads_previous_membership_by_user_or_by_segment_to_the_same_diff(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, by_user: bool
) -> None:
    # GIVEN one definition as a delta-computed and a fully computed segment, both computed at NOW
    monkeypatch.setattr(plan, "ARRIVAL_MARGIN", timedelta(0))
    monkeypatch.setattr(writer, "USER_GRANULE_ROWS", 0 if by_user else 10**9)
    read_from: list[str] = []
    previous = writer._previous
    monkeypatch.setattr(writer, "_previous", lambda t, c: read_from.append(previous(t, c)) or read_from[-1])
    runtime, tenant = stack.runtime, fresh_tenant()
    put_segment(runtime, tenant, 1, WEEK_OF_ORDERS)
    put_segment(runtime, tenant, 2, WEEK_OF_ORDERS)
    insert_events(runtime.warehouse, tenant, [order("u1", -DAY), order("u2", -7 * DAY + timedelta(hours=1))])
    insert_events(runtime.warehouse, tenant, [order("u4", -2 * DAY), Event("u5", "page", NOW, NOW, {})])
    engine.compute(runtime, tenant, [Request(1, "full"), Request(2, "full")], NOW)
    assert set(store.iter_members(runtime.warehouse, tenant, 1)) == {"u1", "u2", "u4"}
    # WHEN u3 enters and u1 orders again, two hours on (u2's order has left the window by then)
    later = NOW + timedelta(hours=2)
    insert_events(runtime.warehouse, tenant, [order("u3", timedelta(hours=2)), order("u1", timedelta(hours=2))])
    [delta] = engine.compute(runtime, tenant, [Request(1, "delta")], later)
    # THEN the delta read the table asked for (a full compute always reads by segment)
    assert delta.mode == "delta" and read_from[-1] == ("user_memberships" if by_user else "segment_memberships")
    engine.compute(runtime, tenant, [Request(2, "full")], later)
    assert read_from[-1] == "segment_memberships"
    # AND published what the full compute did
    members = set(store.iter_members(runtime.warehouse, tenant, 1))
    assert members == set(store.iter_members(runtime.warehouse, tenant, 2)) == {"u1", "u3", "u4"}
    assert delta.publication is not None
    assert (delta.publication.entered_count, delta.publication.exited_count) == (1, 1)
    assert delta.publication.member_count == store.member_count(runtime.warehouse, tenant, 1) == 3
    assert store.changes(runtime.warehouse, tenant, 1, delta.compute_id) == store.ChangeSet(["u3"], ["u2"])


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    with fresh_database(request, chdb_path, migrated=False) as built:
        yield built


def test_migration_0620_keeps_every_membership_row_in_small_granules(warehouse: Warehouse) -> None:
    # GIVEN a warehouse before 0620 holding change rows of two tenants
    migrate(warehouse, through=619)
    tenant, other = fresh_tenant(), fresh_tenant()
    rows = [
        (t, segment, f"u{user}", version, entered, uuid.uuid4().hex, NOW)
        for t in (tenant, other)
        for segment, user, version, entered in ((1, 1, 10, 1), (1, 1, 11, 0), (1, 2, 10, 1), (2, 1, 12, 1))
    ]
    warehouse.insert("segment_memberships", MEMBERSHIP_COLUMNS, rows)
    everything = "SELECT tenant_id, user_id, segment_id, version, entered FROM user_memberships ORDER BY ALL"
    before = warehouse.query(everything).rows
    assert len(before) == 8
    # WHEN the migration runs
    assert migrate(warehouse, through=620) == ["0620_user_memberships_granules.sql"]
    # THEN the same rows, in 256-row granules, and the view feeds it again
    assert warehouse.query(everything).rows == before
    definition = warehouse.query(
        "SELECT create_table_query FROM system.tables WHERE database = {database:String} AND name = 'user_memberships'",
        {"database": warehouse.database},
    ).scalar()
    assert "index_granularity = 256" in str(definition)
    warehouse.insert("segment_memberships", MEMBERSHIP_COLUMNS, [(tenant, 3, "u9", 13, 1, "c", NOW)])
    assert len(warehouse.query(everything).rows) == 9
