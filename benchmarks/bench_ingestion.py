"""Ingestion throughput.

1. Batch ingestion, events/s on one core: `accept_batch` on 500-event request bodies (parse, validate,
   stamp, serialise, publish to the local bus) vs `orjson.loads` of the same bodies.
2. Event writer, events/s: `handle_event_batch` on the published `EventBatch` messages (parse, claims,
   existence check, deduplicated block inserts, `UsersChanged`) vs a plain `INSERT ... SELECT` of the
   same rows into a table of the same schema, and vs the per-message floor: one plain INSERT of each
   message's rows (what a writer that did nothing but insert would cost on this engine).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from segops.bus.base import BusMessage, Topic
from segops.bus.local import LocalBus
from segops.config import Settings
from segops.ingestion.intake import accept_batch
from segops.ingestion.writer import COLUMNS as WRITER_COLUMNS
from segops.ingestion.writer import event_row, handle_event_batch
from segops.messages import EventBatch
from segops.runtime import build_runtime
from segops.warehouse import chdb_backend
from segops.warehouse.migrations import migrate

from benchmarks.harness import Figure, best_of, peak_rss_mb, ratio_figure

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


def run(scale: float) -> list[Figure]:
    total = max(BATCH_SIZE * 4, int(1_000_000 * scale))
    bodies = _bodies(total)
    events = len(bodies) * BATCH_SIZE
    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-ingestion-"))
    # chDB serves one data directory per process: join the one another benchmark opened, if any.
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    try:
        settings = Settings(
            environment="test",
            data_dir=workdir,
            chdb_path=opened or workdir / "chdb",
            clickhouse_database=f"bench_ingestion_{uuid.uuid4().hex[:8]}",
            jwt_secret="bench-" + "x" * 40,
        )
        bus = LocalBus()
        published: list[bytes] = []
        bus.subscribe(Topic.EVENTS, "bench-capture", lambda m: published.append(m.data))
        runtime = build_runtime(settings, bus=bus)
        migrate(runtime.warehouse)

        def parse_only() -> None:
            for body in bodies:
                orjson.loads(body)

        def ingest() -> None:
            for body in bodies:
                accept_batch(runtime, TENANT_ID, body)

        parse_seconds = best_of(parse_only)
        ingest_seconds = best_of(ingest)
        rss_ingest = peak_rss_mb()
        bus.drain()  # captures the messages of every run; one run's worth is what the writer gets
        messages = published[: len(bodies)]

        def write_all() -> None:
            for i, data in enumerate(messages):
                handle_event_batch(BusMessage(Topic.EVENTS, data, {"tenant_id": str(TENANT_ID)}, f"bench-{i}"), runtime)

        started = time.perf_counter()
        write_all()
        write_seconds = time.perf_counter() - started
        warehouse = runtime.warehouse
        stored = warehouse.query("SELECT count() FROM events").scalar()
        assert stored == events, (stored, events)
        warehouse.command("CREATE TABLE events_baseline AS events")
        baseline_times = []
        for _ in range(3):
            warehouse.command("TRUNCATE TABLE events_baseline")
            started = time.perf_counter()
            warehouse.command("INSERT INTO events_baseline SELECT * FROM events")
            baseline_times.append(time.perf_counter() - started)
        insert_select = min(baseline_times)
        # The per-message floor: one plain INSERT of each message's rows (already parsed) into a copy of
        # `events` (same engine and projection, no materialized views, no dedup token, no lookup).
        warehouse.command("CREATE TABLE events_floor AS events")
        message_rows = [[event_row(e) for e in EventBatch.model_validate_json(data).events] for data in messages]
        started = time.perf_counter()
        for rows in message_rows:
            warehouse.insert("events_floor", WRITER_COLUMNS, rows)
        floor_seconds = time.perf_counter() - started
        # Redelivering everything stores nothing new: the dedupe cost on the duplicate path.
        started = time.perf_counter()
        write_all()
        redeliver_seconds = time.perf_counter() - started
        assert warehouse.query("SELECT count() FROM events").scalar() == events
        warehouse.command(f"DROP DATABASE `{settings.clickhouse_database}`")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

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
            "event_writer insert throughput (500-event messages)",
            events / write_seconds,
            "events/s",
            "INSERT ... SELECT of the same rows",
            events / insert_select,
            target=">= 500k/s",
            cost_ratio=write_seconds / insert_select,
            events=events,
            peak_rss_mb=peak_rss_mb(),
        ),
        ratio_figure(
            "event_writer vs one plain INSERT per message (the per-message floor)",
            events / write_seconds,
            "events/s",
            "one INSERT of each message's rows, no views",
            events / floor_seconds,
            cost_ratio=write_seconds / floor_seconds,
            messages=len(messages),
        ),
        ratio_figure(
            "event_writer redelivery of already-written messages",
            events / redeliver_seconds,
            "events/s",
            "first delivery",
            events / write_seconds,
        ),
    ]
