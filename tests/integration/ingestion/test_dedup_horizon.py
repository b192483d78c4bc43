"""The writer's id lookup reads the events received within the dedup horizon, not the tenant's history
(migration 0900, `writer_dedup_horizon_days`): a redelivered or replayed message is recognised at any
age (its events keep their receive time), a client's retry of a `message_id` within the horizon."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from segops.bus.local import LocalBus
from segops.config import Settings
from segops.ingestion.writer import lookup_since, stored_event_ids, write_flush
from segops.localstack import LocalStack
from segops.runtime import Runtime, build_runtime
from segops.warehouse import statistics
from segops.warehouse.migrations import migrate

from tests.integration.ingestion.test_writer import _event
from tests.support.clickhouse_http import ChdbHttpServer
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events
from tests.support.ingestion import stored_events

NOW = datetime.now(UTC)


@pytest.fixture(params=["chdb", "clickhouse"])
def runtime(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Runtime]:
    """A runtime on chDB or on a ClickHouse server, its warehouse migrated up to (not including) 0900."""
    settings.warehouse = request.param
    if request.param == "clickhouse":
        server: ChdbHttpServer = request.getfixturevalue("clickhouse_http")
        settings.clickhouse_url = server.url
    built = build_runtime(settings, bus=LocalBus())
    migrate(built.warehouse, through=899)
    try:
        yield built
    finally:
        built.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        built.warehouse.close()


def _rows_read(runtime: Runtime, tenant: int, ids: list[str], since: date) -> tuple[set[str], int]:
    with statistics.measuring() as measured:
        found = stored_event_ids(runtime, tenant, ids, since)
    return found, measured.rows_read


def test_after_0900_the_lookup_reads_the_horizon_not_the_history(runtime: Runtime) -> None:
    # GIVEN a tenant's 30,000 events received 40 days ago and 2,000 of the same days received now (a
    # backfill), stored before 0900 in one part: each user's rows interleave both receive times, so
    # no granule of `events` itself can be skipped by its receive time
    tenant = fresh_tenant()
    then = NOW - timedelta(days=40)
    events = [
        Event(f"u{i % 500}", "page_viewed", then + timedelta(seconds=i), NOW if i % 16 == 0 else then)
        for i in range(32_000)
    ]
    insert_events(runtime.warehouse, tenant, events)
    recent = {
        str(row[0])
        for row in runtime.warehouse.query(
            "SELECT event_id FROM events WHERE tenant_id = {t:UInt64} AND received_at > {since:DateTime64(3)}",
            {"t": tenant, "since": NOW - timedelta(days=1)},
        ).rows
    }
    ids = sorted(recent) + [str(_event(tenant, "u").event_id) for _ in range(500)]  # 500 never stored
    since = lookup_since([NOW], runtime.settings.writer_dedup_horizon_days)
    before, read_before = _rows_read(runtime, tenant, ids, since)
    # WHEN the migration runs
    assert migrate(runtime.warehouse) == ["0900_event_ids_by_receive_day.sql"]
    # THEN the lookup finds the same ids, and reads the ids it was given and about the recent events'
    # granule (8,192 rows) instead of every event of the tenant (without the bound: all 32,000)
    after, read_after = _rows_read(runtime, tenant, ids, since)
    assert after == before == recent and len(recent) == 2_000
    _, read_history = _rows_read(runtime, tenant, ids, date(2000, 1, 1))
    assert read_after <= len(ids) + 8_192 < 32_000 <= read_history
    assert read_before >= 32_000  # without 0900 the bound cannot select granules: it reads everything
    projections = runtime.warehouse.query(
        "SELECT name FROM system.projections WHERE database = {d:String} AND table = 'events'",
        {"d": runtime.warehouse.database},
    ).rows
    assert projections == [("by_received_event_id",)]


def test_a_message_redelivered_long_after_it_was_received_is_stored_once(stack: LocalStack) -> None:
    # GIVEN events received 30 days ago (a message replayed from the dead-letter archive, say),
    # already written once
    tenant = fresh_tenant()
    received = NOW - timedelta(days=30)
    events = [_event(tenant, f"u{i}", received_at=received, occurred_at=received) for i in range(5)]
    assert write_flush(stack.runtime, [events]).report.sent == 5
    # WHEN the same message is delivered again, beyond the horizon: its events keep their receive time
    outcome = write_flush(stack.runtime, [events])
    # THEN nothing is written twice
    assert outcome.report.sent == 0 and outcome.report.skipped == 5
    assert len(stored_events(stack, tenant)) == 5


@pytest.mark.parametrize(("days_later", "written_again"), [(6, False), (8, True)])
def test_a_client_retry_is_recognised_within_the_horizon(
    stack: LocalStack, days_later: int, written_again: bool
) -> None:
    # GIVEN an event with a client message id, received some days ago (horizon: 7 days)
    assert stack.runtime.settings.writer_dedup_horizon_days == 7
    tenant = fresh_tenant()
    first = _event(tenant, "u1", message_id="order-1001", received_at=NOW - timedelta(days=days_later))
    assert write_flush(stack.runtime, [[first]]).report.sent == 1
    # WHEN the client sends the same message id again now (a new request: a new receive time)
    retry = first.model_copy(update={"received_at": NOW})
    outcome = write_flush(stack.runtime, [[retry]])
    # THEN within the horizon the writer finds the first copy; past it, the lookup no longer reads it
    assert retry.event_id == first.event_id
    assert outcome.report.sent == (1 if written_again else 0)
