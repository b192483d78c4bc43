"""The membership change log is compacted: its size follows the members, not the number of computes,
and every snapshot from the compaction horizon on reads as before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from segops import clock
from segops.compute import engine
from segops.compute.plan import Request
from segops.localstack import LocalStack
from segops.membership import store, writer
from segops.metering.meter import close_meter
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse

from tests.integration.dsl.strategies import NOW
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events
from tests.support.segments import put_segment

RECENT_A = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "a", "operator": "gte", "value": 1, "window_days": 1.5}],
}
ROUNDS = 8


@pytest.fixture(params=["chdb", "clickhouse"])
def stack(request: pytest.FixtureRequest, stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The stack on chDB, or talking to a ClickHouse server (the HTTP protocol on the same engine)."""
    if request.param == "chdb":
        yield stack
        return
    server = request.getfixturevalue("clickhouse_http")
    served = ClickHouseWarehouse(server.url, "default", "", stack.settings.clickhouse_database)
    monkeypatch.setattr(stack.runtime, "warehouse", served)
    yield stack
    close_meter(stack.runtime)  # its meter writes to `served` (the warehouse when it was made): last write first
    served.close()


def log_rows(stack: LocalStack, tenant: int) -> dict[str, int]:
    return {
        table: int(
            stack.runtime.warehouse.query(
                f"SELECT count() FROM {table} WHERE tenant_id = {{t:UInt64}}",  # noqa: S608 (a literal table name)
                {"t": tenant},
            ).scalar()
        )
        for table in ("segment_memberships", "user_memberships", "membership_changes", "membership_commits")
    }


def test_compaction_keeps_the_members_and_drops_the_history(stack: LocalStack) -> None:
    # GIVEN a segment whose membership turned over at every one of 8 computes (a user enters, an
    # earlier one leaves), and ten users who stay members throughout
    tenant = fresh_tenant()
    put_segment(stack.runtime, tenant, 1, RECENT_A)
    steady = [f"s{i}" for i in range(10)]
    for r in range(ROUNDS):
        at = NOW + timedelta(days=r)
        insert_events(stack.runtime.warehouse, tenant, [Event(u, "a", at, at, {}) for u in [f"u{r}", *steady]])
        engine.compute(stack.runtime, tenant, [Request(1, "delta", f"c{r}")], at)
    last = NOW + timedelta(days=ROUNDS - 1)
    wh = stack.runtime.warehouse
    before = {
        "members": set(store.iter_members(wh, tenant, 1)),
        "count": store.member_count(wh, tenant, 1),
        "users": {u: store.segments_of_user(wh, tenant, u) for u in [f"u{r}" for r in range(ROUNDS)] + steady},
        "latest": store.changes(wh, tenant, 1, f"c{ROUNDS - 1}"),
        "snapshot": store.latest_snapshot(wh, tenant, 1),
    }
    # (a user stays for two computes: entries of all, exits of all but the last two)
    assert before["members"] == {f"u{ROUNDS - 2}", f"u{ROUNDS - 1}", *steady}
    assert log_rows(stack, tenant)["segment_memberships"] == 10 + ROUNDS + (ROUNDS - 2)
    assert log_rows(stack, tenant)["membership_commits"] == ROUNDS
    # WHEN the log is compacted up to now
    writer.compact(stack.runtime, tenant, clock.now() + timedelta(seconds=1))
    # THEN one row per member is left, one commit per version those rows carry (the steady users'
    # first compute, the last two), and every read of the latest snapshot is unchanged
    compacted = {"segment_memberships": 12, "user_memberships": 12, "membership_changes": 0, "membership_commits": 3}
    assert log_rows(stack, tenant) == compacted
    assert store.latest_snapshot(wh, tenant, 1) == before["snapshot"]
    assert set(store.iter_members(wh, tenant, 1)) == before["members"]
    assert store.member_count(wh, tenant, 1) == before["count"]
    assert {u: store.segments_of_user(wh, tenant, u) for u in before["users"]} == before["users"]
    # AND computes carry on from the compacted log: the next delta equals a full compute
    later = last + timedelta(days=1)
    insert_events(stack.runtime.warehouse, tenant, [Event("u0", "a", later, later, {})])
    [delta] = engine.compute(stack.runtime, tenant, [Request(1, "delta", "c-next")], later)
    assert delta.mode == "delta"
    assert store.changes(wh, tenant, 1, "c-next") == store.ChangeSet(["u0"], [f"u{ROUNDS - 2}"])
    assert set(store.iter_members(wh, tenant, 1)) == {"u0", f"u{ROUNDS - 1}", *steady}
    [full] = engine.compute(stack.runtime, tenant, [Request(1, "full", "c-full")], later)
    assert full.publication is not None and full.publication.version is None  # nothing to change
