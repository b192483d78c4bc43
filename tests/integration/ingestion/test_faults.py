"""Faults on the ingestion path, with real components: the stack on a ClickHouse server (the
ClickHouse-HTTP test server on chDB, through clickhouse-connect), a writer process killed with SIGKILL.
Each test asserts the exact final state: every accepted event stored once, nothing dead-lettered
that came through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from segops import clock
from segops.bus.base import BusMessage, Topic
from segops.bus.dead_letters import letters, replay
from segops.config import Settings
from segops.localstack import LocalStack
from segops.messages import EventBatch, TrackedEvent

from tests.support.api import Api
from tests.support.clickhouse_http import ChdbHttpServer
from tests.support.ingestion import deliver

REPO = Path(__file__).resolve().parents[3]
BATCH = "/api/ingestion/track/batch/"


@pytest.fixture
def server_stack(settings: Settings, clickhouse_http: ChdbHttpServer) -> Iterator[LocalStack]:
    """The whole stack with its warehouse on a ClickHouse server (its own database there)."""
    settings.warehouse = "clickhouse"
    settings.clickhouse_url = clickhouse_http.url
    stack = LocalStack(settings)
    try:
        yield stack
    finally:
        clickhouse_http.refuse_inserts(0)
        stack.runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        stack.stop()


def _stored(stack: LocalStack, tenant_id: int) -> tuple[int, int]:
    """(rows, distinct event ids) of the tenant in `events`."""
    row = stack.runtime.warehouse.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE tenant_id = {t:UInt64}", {"t": tenant_id}
    ).rows[0]
    return int(row[0]), int(row[1])


def _accept(api: Api, key: dict[str, str], batches: int, size: int) -> None:
    for b in range(batches):
        events = [
            {"user_id": f"u{b}-{i}", "event_type": "page_viewed", **({"message_id": f"m{b}-{i}"} if i % 2 else {})}
            for i in range(size)
        ]
        response = api.post(BATCH, {"events": events}, headers=key)
        assert response.status_code == 202 and response.get_json() == {"queued": size, "skipped": 0}


def test_clickhouse_refusing_inserts_for_a_while_then_recovering_loses_nothing(
    server_stack: LocalStack, clickhouse_http: ChdbHttpServer
) -> None:
    api = Api(server_stack)
    account = api.signup()
    server_stack.bus.drain()
    # GIVEN a ClickHouse that refuses the next 12 INSERTs (every writer flush fails meanwhile)
    clickhouse_http.refuse_inserts(12)
    # WHEN 60 events are accepted in 6 batches, each retried until ClickHouse takes it
    _accept(api, account.key, batches=6, size=10)
    server_stack.bus.drain()
    # THEN the outage was ridden out within the retry horizon: every event stored once, no dead letter
    assert clickhouse_http.refusals_left == 0, "the outage should have been used up"
    assert _stored(server_stack, account.tenant_id) == (60, 60)
    assert not server_stack.bus.dead_letters
    assert letters(server_stack.runtime.store, "events", datetime(2000, 1, 1, tzinfo=UTC)) == []


def test_an_outage_beyond_the_retry_horizon_is_dead_lettered_then_replayed_once(
    server_stack: LocalStack, clickhouse_http: ChdbHttpServer
) -> None:
    tenant = 434343
    started = clock.now()
    batches = [_batch(tenant, [5], 4), _batch(tenant, [6], 3)]
    # GIVEN ClickHouse refusing writes through the last attempts Pub/Sub makes (the manifest's 100th)
    clickhouse_http.refuse_inserts(10**6)
    for n, batch in enumerate(batches):
        message = BusMessage(Topic.EVENTS, batch.model_dump_json().encode(), {"tenant_id": str(tenant)}, f"dl{n}")
        for attempt in (99, 100):
            assert deliver(server_stack, "event_writer", replace(message, delivery_attempt=attempt)) == 500
    # THEN the messages are dead letters kept in the control-plane store (not in ClickHouse), once each
    assert [letter.message_id for _, letter in letters(server_stack.runtime.store, "events", started)] == [
        "dl0",
        "dl1",
    ]
    assert _stored(server_stack, tenant) == (0, 0)
    # WHEN ClickHouse recovers and an operator replays, twice
    clickhouse_http.refuse_inserts(0)
    assert replay(server_stack.runtime.store, server_stack.bus, "events", started).replayed == 2
    server_stack.bus.drain()
    assert replay(server_stack.runtime.store, server_stack.bus, "events", started).replayed == 0
    server_stack.bus.drain()
    # THEN every accepted event is stored once
    assert _stored(server_stack, tenant) == (7, 7)


def _batch(tenant_id: int, months: list[int], per_month: int) -> EventBatch:
    now = datetime.now(UTC)
    return EventBatch(
        events=[
            TrackedEvent(
                tenant_id=tenant_id,
                event_id=uuid.uuid4(),
                message_id=None,
                user_id=f"u{month}-{i}",
                event_type="order_placed",
                occurred_at=datetime(2025, month, 10, tzinfo=UTC),
                received_at=now,
                payload={"total": i},
            )
            for month in months
            for i in range(per_month)
        ]
    )


def test_a_writer_killed_mid_flush_leaves_every_event_stored_once_after_redelivery(
    server_stack: LocalStack, tmp_path: Path
) -> None:
    # GIVEN three accepted messages spanning four months, flushed by a writer process that writes one
    # month per INSERT
    tenant = 424242
    batches = [_batch(tenant, [1, 2], 5), _batch(tenant, [2, 3], 5), _batch(tenant, [4], 5)]
    bodies = tmp_path / "messages.json"
    bodies.write_bytes(orjson.dumps([b.model_dump_json() for b in batches]))
    settings = server_stack.settings
    env = {
        **os.environ,
        "SEGOPS_ENVIRONMENT": "test",
        "SEGOPS_DATA_DIR": str(tmp_path / "writer"),
        "SEGOPS_WAREHOUSE": "clickhouse",
        "SEGOPS_CLICKHOUSE_URL": settings.clickhouse_url,
        "SEGOPS_CLICKHOUSE_DATABASE": settings.clickhouse_database,
        "SEGOPS_WRITER_PARTITIONS_PER_INSERT": "1",
        "SEGOPS_JWT_SECRET": "writer-process-secret",
        "SEGOPS_LOG_LEVEL": "ERROR",
    }
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.support.writer_process", str(bodies)],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        # WHEN it is killed (SIGKILL: no cleanup, no ack) right after its second INSERT of four
        assert writer.stdout.readline().strip() == "inserted 1"
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "inserted 2"
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
    rows, distinct = _stored(server_stack, tenant)
    assert 0 < rows < 25 and rows == distinct, "the flush died half way"
    # AND Pub/Sub redelivers every unacknowledged message to another writer instance, one twice
    for batch in [*batches, batches[1]]:
        message = BusMessage(Topic.EVENTS, batch.model_dump_json().encode(), {"tenant_id": str(tenant)}, "m1")
        assert deliver(server_stack, "event_writer", message) == 200
    # THEN every accepted event is stored exactly once
    assert _stored(server_stack, tenant) == (25, 25)
