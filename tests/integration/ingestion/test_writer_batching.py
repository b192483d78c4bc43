"""Writer micro-batching: concurrent deliveries share one INSERT, and every failure mode of a combined
flush (a failed flush, a crash mid-flush, the redelivery of one of its messages) still stores each
event exactly once, in `events` and in the tables its materialized views fill."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest
from segops.bus.base import BusMessage, Topic
from segops.bus.local import LocalBus
from segops.config import Settings
from segops.errors import RetryableError
from segops.ingestion import writer
from segops.ingestion.writer import event_row, handle_event_batch, write_flush
from segops.ingestion.writer_rows import writer_events
from segops.localstack import LocalStack
from segops.messages import EventBatch, SegmentComputeEnvelope, TrackedEvent
from segops.runtime import build_runtime
from segops.warehouse.base import Warehouse
from segops.warehouse.migrations import migrate

from tests.integration.ingestion.test_writer import _event
from tests.support.api import Account, Api
from tests.support.clickhouse_http import ChdbHttpServer
from tests.support.ingestion import FlakyWarehouse, record_topic, stored_events

VIEW_TABLES = ("event_arrivals", "event_days")


class Crash(BaseException):
    """The writer process dies here: no cleanup of the flush runs."""


def _message(events: Sequence[TrackedEvent], n: int = 0, attempt: int = 1) -> BusMessage:
    data = EventBatch(events=list(events)).model_dump_json().encode()
    tenant = str(events[0].tenant_id)
    return BusMessage(Topic.EVENTS, data, {"tenant_id": tenant}, f"msg-{n}", delivery_attempt=attempt)


def _deliver_concurrently(stack: LocalStack, messages: list[BusMessage]) -> dict[str, BaseException]:
    """Every message handed to the writer at the same moment, each on its own thread (gen2 concurrency)."""
    raised: dict[str, BaseException] = {}
    start = threading.Barrier(len(messages))

    def deliver(message: BusMessage) -> None:
        start.wait()
        try:
            handle_event_batch(message, stack.runtime)
        except Exception as exc:
            raised[message.message_id] = exc

    threads = [threading.Thread(target=deliver, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return raised


def _count(warehouse: Warehouse, table: str, tenant_id: int) -> int:
    return int(
        warehouse.query(
            "SELECT count() FROM {table:Identifier} WHERE tenant_id = {t:UInt64}", {"table": table, "t": tenant_id}
        ).scalar()
    )


def test_concurrent_deliveries_share_one_insert_and_are_acked_after_it(stack: LocalStack, account: Account) -> None:
    # GIVEN a writer gathering deliveries for up to 1 s, and 30 one-event messages (plus one of 5 events)
    stack.runtime.settings.writer_flush_seconds = 1.0
    counting = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on=set())
    stack.runtime.warehouse = counting
    notices = record_topic(stack, Topic.SEGMENT_COMPUTE)
    tenant = account.tenant_id
    messages = [_message([_event(tenant, f"u{i}", f"m{i}" if i % 2 else None)], i) for i in range(30)]
    messages.append(_message([_event(tenant, f"batch-{i}") for i in range(5)], 30))
    # WHEN they are delivered concurrently
    assert _deliver_concurrently(stack, messages) == {}
    # THEN every delivery returned (acked) with its event stored, all through ONE insert and one notice
    assert counting.calls == 1
    assert len(stored_events(stack, tenant)) == 35
    stack.bus.drain()
    assert len(notices) == 1
    notice = SegmentComputeEnvelope.model_validate_json(notices[0].data).message
    assert len(getattr(notice, "user_ids", [])) == 35


def test_a_failed_flush_nacks_every_delivery_and_regrouped_redeliveries_store_once(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN ten messages combined into one flush whose INSERT fails
    stack.runtime.settings.writer_flush_seconds = 1.0
    tenant = account.tenant_id
    messages = [_message([_event(tenant, f"u{i}-{j}") for j in range(3)], i) for i in range(10)]
    stack.runtime.warehouse = flaky = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on={1})
    raised = _deliver_concurrently(stack, messages)
    # THEN no delivery is acknowledged
    assert sorted(raised) == sorted(m.message_id for m in messages) and flaky.calls == 1
    # WHEN they come back regrouped: half of them together, then each of the rest alone, then all again
    assert _deliver_concurrently(stack, messages[:5]) == {}
    commit = writer.event_writer_for(stack.runtime).commit
    commit.bounds = replace(commit.bounds, max_wait_seconds=0)
    for message in messages[5:] + messages:
        handle_event_batch(message, stack.runtime)
    # THEN every event is stored exactly once
    assert len(stored_events(stack, tenant)) == 30
    assert _count(stack.runtime.warehouse, "event_days", tenant) == 30


def test_a_crash_mid_flush_then_redelivery_stores_each_event_once(
    stack: LocalStack, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a flush of three messages spanning three months, one month per INSERT, and short claim leases
    monkeypatch.setattr(writer, "CLAIM_LEASE_SECONDS", 1.0)
    stack.runtime.settings.writer_partitions_per_insert = 1
    tenant = account.tenant_id
    months = [datetime(2026, m, 10, tzinfo=UTC) for m in (3, 4, 5)]
    messages = [
        [_event(tenant, f"m{m}-u{i}", f"m{m}-{i}" if i % 2 else None, occurred_at=at) for i in range(4)]
        for m, at in enumerate(months)
    ]
    # WHEN the writer dies during its second INSERT (March is durable, April and May are not)
    stack.runtime.warehouse = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on={2}, failure=Crash)
    with pytest.raises(Crash):
        write_flush(stack.runtime, messages)
    stack.runtime.warehouse = stack.runtime.warehouse.inner  # type: ignore[attr-defined]
    assert len(stored_events(stack, tenant)) == 4
    # THEN a redelivery while the dead flush's claims live is nacked without writing anything
    outcome = write_flush(stack.runtime, messages[1:])
    assert all(isinstance(r, RetryableError) for r in outcome.refusals) and outcome.report.sent == 0
    # AND once the lease has expired, redeliveries (in any grouping) write exactly what is missing
    time.sleep(1.1)
    outcome = write_flush(stack.runtime, [messages[2], messages[0]])
    assert outcome.refusals == [None, None] and (outcome.report.sent, outcome.report.skipped) == (4, 4)
    outcome = write_flush(stack.runtime, messages)
    assert (outcome.report.sent, outcome.report.skipped) == (4, 8)
    rows = stored_events(stack, tenant)
    assert sorted(r["user_id"] for r in rows) == sorted(e.user_id for events in messages for e in events)
    assert _count(stack.runtime.warehouse, "event_days", tenant) == 12


def test_a_flush_holding_two_deliveries_of_one_message_writes_one_row_per_event(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN a message and its duplicate delivery gathered into one flush, with a message that repeats
    # one of their client-keyed events
    tenant = account.tenant_id
    events = [_event(tenant, f"u{i}", f"k{i}" if i % 2 else None) for i in range(6)]
    retry = [_event(tenant, "u1", "k1"), _event(tenant, "u9")]
    # WHEN the flush is written
    outcome = write_flush(stack.runtime, [events, events, retry])
    # THEN every delivery is acknowledged and each event is one row, in `events` and in the view tables,
    # as the INSERT wrote them (counted without FINAL: the INSERT does not merge its block with itself,
    # `optimize_on_insert = 0`, so the flush itself must hold each id once)
    assert outcome.refusals == [None, None, None]
    assert (outcome.report.sent, outcome.report.skipped) == (7, 7)
    warehouse = stack.runtime.warehouse
    assert {table: _count(warehouse, table, tenant) for table in ("events", *VIEW_TABLES)} == {
        "events": 7,
        "event_arrivals": 7,
        "event_days": 7,
    }


def test_redelivering_one_message_of_a_combined_flush_adds_nothing_anywhere(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN three messages written in one flush (keyed and unkeyed events, one identify)
    tenant = account.tenant_id
    messages = [
        [_event(tenant, "a", "a-1"), _event(tenant, "a")],
        [_event(tenant, "b", event_type="context_identified", payload={"plan": "pro"})],
        [_event(tenant, "c"), _event(tenant, "c", "c-1")],
    ]
    write_flush(stack.runtime, messages)
    warehouse = stack.runtime.warehouse
    before = {table: _count(warehouse, table, tenant) for table in ("events", *VIEW_TABLES)}
    # WHEN only the second message is delivered again (its ack was lost), through the bus handler
    handle_event_batch(_message(messages[1], 1, attempt=2), stack.runtime)
    # THEN neither `events` nor the view tables gained a row
    assert {table: _count(warehouse, table, tenant) for table in ("events", *VIEW_TABLES)} == before
    assert before["events"] == 5


def test_a_block_dropped_as_duplicate_does_not_reach_the_view_tables(stack: LocalStack, account: Account) -> None:
    # GIVEN a block written with its deduplication token (what a flush sends)
    tenant = account.tenant_id
    events = [_event(tenant, f"u{i}") for i in range(10)]
    warehouse = stack.runtime.warehouse
    settings = writer._insert_settings(stack.runtime, writer_events(events))
    warehouse.insert("events", writer.COLUMNS, [event_row(e) for e in events], settings)
    # WHEN the identical block is inserted again (two flushes racing past their lookups)
    warehouse.insert("events", writer.COLUMNS, [event_row(e) for e in events], settings)
    # THEN ClickHouse dropped it in `events` and in every table a view on `events` fills
    assert {table: _count(warehouse, table, tenant) for table in ("events", *VIEW_TABLES)} == {
        "events": 10,
        "event_arrivals": 10,
        "event_days": 10,
    }
    # AND a different block with identical view rows is not mistaken for a duplicate
    twins = [_event(tenant, e.user_id, occurred_at=e.occurred_at) for e in events]
    warehouse.insert(
        "events",
        writer.COLUMNS,
        [event_row(e) for e in twins],
        writer._insert_settings(stack.runtime, writer_events(twins)),
    )
    assert _count(warehouse, "event_days", tenant) == 20


def test_a_backfill_spanning_ten_years_is_split_under_the_partition_limit(stack: LocalStack, account: Account) -> None:
    # GIVEN one event per month for 120 months (ClickHouse refuses > 100 partitions in one INSERT)
    tenant = account.tenant_id
    start = datetime(2015, 1, 15, tzinfo=UTC)
    events = [_event(tenant, f"u{m}", occurred_at=start + timedelta(days=31 * m)) for m in range(120)]
    with pytest.raises(Exception, match=r"(?i)too many partitions"):
        stack.runtime.warehouse.insert("events", writer.COLUMNS, [event_row(e) for e in events])
    counting = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on=set())
    stack.runtime.warehouse = counting
    # WHEN the writer stores them
    report = writer.write_events(stack.runtime, events)
    # THEN in three INSERTs of at most 50 months, every event once
    assert counting.calls == 3 and report.sent == 120
    assert len(stored_events(stack, tenant)) == 120


def test_one_event_requests_through_the_running_stack_become_few_inserts(settings: Settings) -> None:
    # GIVEN the stack as `make dev` runs it: the bus delivering concurrently, a 0.3 s flush window
    settings.bus_concurrency = 64
    settings.writer_flush_seconds = 0.3
    stack = LocalStack(settings)
    try:
        api = Api(stack)
        account = api.signup()
        stack.bus.drain()
        counting = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on=set())
        stack.runtime.warehouse = counting
        # WHEN 120 one-event requests are queued and the bus delivers them
        for i in range(120):
            body = {"user_id": f"u{i}", "event_type": "page_viewed", "message_id": f"req-{i}"}
            assert api.post("/api/ingestion/track/", body, headers=account.key).status_code == 202
        stack.bus.start()
        deadline = time.monotonic() + 60
        while len(stored_events(stack, account.tenant_id)) < 120 and time.monotonic() < deadline:
            time.sleep(0.1)
        # THEN every event is stored once, in a handful of INSERTs (event_writer's manifest concurrency)
        assert len(stored_events(stack, account.tenant_id)) == 120
        assert counting.calls <= 6, counting.calls
    finally:
        stack.stop()


def test_on_a_clickhouse_server_flushes_are_async_inserts_that_wait_and_stay_exactly_once(
    settings: Settings, clickhouse_http: ChdbHttpServer
) -> None:
    # GIVEN the writer on the ClickHouse backend (clickhouse-connect over HTTP)
    settings.warehouse = "clickhouse"
    settings.clickhouse_url = clickhouse_http.url
    runtime = build_runtime(settings, bus=LocalBus())
    migrate(runtime.warehouse)
    try:
        events = [_event(7, f"u{i}", f"m{i}" if i % 2 else None) for i in range(6)]
        before = len(clickhouse_http.requests)
        # WHEN a flush is written, then written again (a redelivery)
        first = write_flush(runtime, [events[:3], events[3:]])
        again = write_flush(runtime, [events])
        # THEN its INSERT asked the server to buffer it and answer only once written, with its token
        [insert] = [r for r in clickhouse_http.requests[before:] if r["statement"].upper().startswith("INSERT")]
        assert {
            k: insert["params"].get(k) for k in ("async_insert", "wait_for_async_insert", "parallel_view_processing")
        } == {"async_insert": "1", "wait_for_async_insert": "1", "parallel_view_processing": "1"}
        assert insert["params"]["insert_deduplication_token"].startswith("ev-6-")
        assert (first.report.sent, again.report.sent, again.report.skipped) == (6, 0, 6)
        stored = runtime.warehouse.query("SELECT count() FROM events WHERE tenant_id = 7").scalar()
        assert stored == 6
    finally:
        runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        runtime.warehouse.close()


def test_a_flush_holding_naive_and_aware_times_stores_both(stack: LocalStack) -> None:
    # GIVEN two messages in one flush: one whose times carry no offset (the model reads them as UTC,
    # as the `events` columns do), one in UTC
    now = datetime.now(UTC).replace(microsecond=0)
    naive = _event(5, "a", occurred_at=now.replace(tzinfo=None), received_at=now.replace(tzinfo=None))
    aware = _event(5, "b", occurred_at=now, received_at=now)
    # WHEN they are written together (a flush compares its messages' receive times)
    outcome = write_flush(stack.runtime, [[naive], [aware]])
    # THEN both are stored, at the same instant
    assert outcome.report.sent == 2 and outcome.refusals == [None, None]
    assert {(row["user_id"], row["occurred_at"]) for row in stored_events(stack, 5)} == {("a", now), ("b", now)}


def test_the_event_writer_function_raises_the_collector_thresholds_of_its_process() -> None:
    # GIVEN CPython's default thresholds WHEN the event_writer function is loaded as Cloud Functions loads it
    source = Path(__file__).resolve().parents[3] / "functions" / "event_writer" / "main.py"
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        functions_framework.create_app("event_writer", str(source), "cloudevent")
        # THEN its process collects as the writer needs (a full collection per few thousand objects
        # made parsing the messages held during a flush 3x slower)
        assert gc.get_threshold() == writer.WRITER_GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize("backend", ["chdb", "clickhouse"])
def test_the_lookup_finds_exactly_the_stored_ids_in_one_statement_or_in_server_sized_chunks(
    settings: Settings, clickhouse_http: ChdbHttpServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 6,000 stored events, on chDB or on a ClickHouse server (which refuses a request field, e.g. a
    # bound parameter, over 128 KiB)
    settings.warehouse = backend
    settings.clickhouse_url = clickhouse_http.url
    runtime = build_runtime(settings, bus=LocalBus())
    migrate(runtime.warehouse)
    try:
        events = [_event(8, f"u{i}") for i in range(12_000)]
        write_flush(runtime, [events[:6_000]])
        statements: list[str] = []
        query = runtime.warehouse.query
        monkeypatch.setattr(
            runtime.warehouse, "query", lambda sql, *a, **k: statements.append(sql) or query(sql, *a, **k)
        )
        # WHEN the writer looks up all 12,000 ids
        found = writer.stored_event_ids(
            runtime, 8, [str(e.event_id) for e in events], writer.lookup_since([e.received_at for e in events], 7)
        )
        # THEN it finds exactly the stored ones: in one statement in process, in chunks over HTTP
        assert found == {str(e.event_id) for e in events[:6_000]}
        assert len(statements) == (4 if backend == "clickhouse" else 1)
    finally:
        runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        runtime.warehouse.close()
