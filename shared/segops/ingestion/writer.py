"""The `event_writer` function: `EventBatch` messages → `events`, exactly once under at-least-once delivery.

Concurrent deliveries to one writer instance are gathered into one flush (`batching.GroupCommit`,
bounded by the `writer_flush_*` settings); a delivery is acknowledged only after the flush holding
its events returned. Every event carries an id fixed before it reached the bus (uuid5 of the client
`message_id`, else a random id stamped at the edge), so every delivery of it (Pub/Sub redelivery, a
publisher retry, a client retry in another message, a flush regrouped after a failure) has the same
id. A flush (docs/ingestion.md gives the whole argument):
1. claims every id in the cache (SET NX, one round trip of atomic steps, owner = this flush, lease longer
   than the function timeout): an id claimed by another flush is being written right now, so the
   messages carrying it are nacked and come back later; the rest go on;
2. looks the ids up among the events received since `writer_dedup_horizon_days` before the flush's
   oldest receive time, through the `by_received_event_id` projection of `events` (written atomically
   with each part, so "stored" never disagrees with the table; ordered by receive day, so the lookup
   reads the horizon, not the tenant's history), and inserts only the absent ones, one INSERT per
   group of at most `writer_partitions_per_insert` month partitions;
3. publishes one `UsersChanged` per tenant, also when everything was a duplicate (an earlier delivery
   may have died between its insert and its publish), then releases its claims.
A crash mid-flush leaves some parts written and the claims held until their lease expires; the
redelivery finds the written ids and inserts the rest. Each INSERT also carries a deduplication token
(a hash of its ids), which ClickHouse checks in `events` and, through
`deduplicate_blocks_in_dependent_materialized_views`, in the view tables.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

import orjson

from segops.bus import dead_letters
from segops.bus.base import BusMessage, Topic
from segops.bus.cloudevents import parse_message
from segops.cache.base import Cache, CacheUnavailable
from segops.cache.memory import MemoryCache
from segops.errors import PermanentError, RetryableError
from segops.ingestion.batching import FlushBounds, GroupCommit
from segops.ingestion.error_log import ErrorRecord, record_errors
from segops.ingestion.writer_rows import WriterEvent, read_batch, writer_events
from segops.messages import EventBatch, SegmentComputeEnvelope, TrackedEvent, UsersChanged
from segops.metering import units as metering
from segops.metering.meter import meter_for
from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

log = logging.getLogger("segops.ingestion.writer")

COLUMNS = ("tenant_id", "event_id", "message_id", "user_id", "event_type", "occurred_at", "received_at", "payload")
CLAIM_PREFIX = "ingest-claim:"
# Longer than the event_writer timeout (manifest, 60 s), shorter than the sum of Pub/Sub's first
# backoffs (10+20+40+80 s): a live writer never loses its claims mid-flush, and the claims of a writer
# that crashed have expired before a message runs out of delivery attempts.
CLAIM_LEASE_SECONDS = 90.0
# A flush that reaches its INSERT later than this after claiming gives up (nack): its claims may be
# about to expire, and a write after expiry could race a retry of the same ids.
CLAIM_SAFE_SECONDS = CLAIM_LEASE_SECONDS / 2
# Ids per lookup statement on a ClickHouse server. Its HTTP handler refuses any request field (a URL
# parameter or a form field) longer than `http_max_field_value_size`, 128 KiB by default since 23.6:
# 3,000 canonical ids joined are 111,000 bytes (5,000 were 185,000, refused: "Field value too
# long"). chDB takes the ids in process: one statement per tenant, so the `by_received_event_id`
# projection is read once per flush instead of once per chunk (27,000 fresh ids against 100,000
# stored events: 85 ms in chunks, 47 ms at once).
SERVER_LOOKUP_CHUNK = 3000
# Server-side buffering on a ClickHouse server: several writer instances' flushes become one part.
SERVER_INSERT_SETTINGS: Mapping[str, str | int] = {
    "async_insert": 1,
    "wait_for_async_insert": 1,
    "async_insert_deduplicate": 1,
}


# CPython's default collector thresholds (700, 10, 10) run a full collection every few thousand new
# objects; a writer instance holds hundreds of parsed messages (hundreds of thousands of objects)
# while a flush runs, and those collections were measured to make parsing them 3x slower. The
# writer's process raises them (`configure_writer_process`, called by functions/event_writer).
WRITER_GC_THRESHOLDS = (50_000, 20, 100)


def configure_writer_process() -> None:
    """Process settings of an event_writer instance (see WRITER_GC_THRESHOLDS)."""
    gc.set_threshold(*WRITER_GC_THRESHOLDS)


@dataclass(frozen=True)
class WriteReport:
    """`sent`: rows inserted; `skipped`: events found already stored (or repeated within the flush)."""

    sent: int
    skipped: int


@dataclass(frozen=True)
class FlushOutcome:
    report: WriteReport
    # Per message of the flush: None when its events are durable, else why it must be retried.
    refusals: list[RetryableError | None]


# `WriterEvent` fields, read in C over a whole flush (map) instead of one attribute per event in Python.
_TENANT = itemgetter(0)
_EVENT_ID = itemgetter(1)
_USER_ID = itemgetter(3)
_OCCURRED_AT = itemgetter(5)
_RECEIVED_AT = itemgetter(6)
_ROW = itemgetter(*range(len(COLUMNS)))  # a `WriterEvent` is its `events` row, then its source


def block_token(events: Sequence[WriterEvent]) -> str:
    """A token that only the same events (in the same order) produce."""
    # The digest of the ids' 16-byte values, joined (the tokens of blocks already stored), from their
    # text in one conversion for the whole block.
    ids = bytes.fromhex("".join(map(_EVENT_ID, events)).replace("-", ""))
    return f"ev-{len(events)}-{hashlib.blake2b(ids, digest_size=16).hexdigest()}"


def claim_key(event: WriterEvent | TrackedEvent) -> str:
    return f"{CLAIM_PREFIX}{event.tenant_id}:{event.event_id}"


# Claims of this process, used while the cache is down (see `Claims`).
_local_claims = MemoryCache()


class Claims:
    """Cache claims on event ids: at most one flush writes a given id at a time.

    With the cache down, claims fall back to this process (`_local_claims`): flushes of one instance
    still never overlap, and the warehouse lookup of step 2 keeps sequential redeliveries from writing
    twice. docs/ingestion.md § "With the cache down" gives the argument and its one residual case."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.owner = uuid.uuid4().bytes
        self.held: list[str] = []
        self.acquired_at = 0.0
        self.cache: Cache = runtime.cache

    def acquire(self, keys: Sequence[str]) -> set[str]:
        """Claim every key (`claim_key`) in one cache round trip; returns those another flush holds."""
        self.acquired_at = time.monotonic()
        try:
            added = self.cache.add_many(keys, self.owner, CLAIM_LEASE_SECONDS)
        except CacheUnavailable:
            log.warning("cache unavailable: claiming event ids in this process only", extra={"ids": len(keys)})
            self.cache = _local_claims
            added = self.cache.add_many(keys, self.owner, CLAIM_LEASE_SECONDS)
        self.held = [key for key, ok in zip(keys, added, strict=True) if ok]
        return {key for key, ok in zip(keys, added, strict=True) if not ok}

    def check_fresh(self) -> None:
        if time.monotonic() - self.acquired_at > CLAIM_SAFE_SECONDS:
            raise RetryableError("the flush took too long after claiming its event ids; retrying")

    def release(self) -> None:
        if not self.held:
            return
        # Only the keys that still hold this flush's value: one that outlived its lease may have been
        # claimed by another flush since. With the cache down, the claims expire with their lease.
        with contextlib.suppress(CacheUnavailable):
            self.cache.release_many(self.held, self.owner)
        self.held = []


# `toDate(received_at)` is the projection's second sort column (migration 0900): the day bound
# selects the horizon's granules. The ids travel as ONE String parameter. On chDB it holds them as
# JSON, read by the engine as data (`format(JSONCompactColumns, ...)`): folded into a constant set
# they cost the planner more than the read (25,000 ids: 52-58 -> 33-38 ms when none is stored,
# 215-249 -> 86-97 ms when all are; docs/performance.md). A ClickHouse server gets them comma-joined
# and folded (an `Array(UUID)` parameter of quoted literals costs about twice as much): a table
# function there needs the global CREATE TEMPORARY TABLE grant, which the app user may lack.
_STORED_IDS_SQL = {
    "chdb": (
        "SELECT event_id FROM events WHERE tenant_id = {tenant_id:UInt64} AND toDate(received_at) >= {since:Date} "
        "AND event_id IN (SELECT id FROM format(JSONCompactColumns, 'id UUID', {ids:String}))"
    ),
    "clickhouse": (
        "SELECT event_id FROM events WHERE tenant_id = {tenant_id:UInt64} AND toDate(received_at) >= {since:Date} "
        "AND event_id IN (SELECT toUUID(arrayJoin(splitByChar(',', {ids:String}))))"
    ),
}


def _ids_param(backend: str, ids: Sequence[str]) -> str:
    # Canonical UUID text never contains a comma.
    return orjson.dumps([ids]).decode() if backend == "chdb" else ",".join(ids)


def lookup_since(received: Iterable[datetime], horizon_days: int) -> date:
    """The first receive day the id lookup reads for events received at `received`: `horizon_days`
    before the oldest of them (a redelivered or replayed message keeps its events' receive time)."""
    oldest = min(received)
    if oldest.tzinfo is not None:  # naive: UTC already
        oldest = oldest.astimezone(UTC)
    return oldest.date() - timedelta(days=horizon_days)


def stored_event_ids(runtime: Runtime, tenant_id: int, ids: Sequence[str], since: date) -> set[str]:
    """Which of `ids` (canonical UUID text) are in `events` among those received on or after `since`
    (an index lookup through the `by_received_event_id` projection)."""
    found: set[str] = set()
    scoped = TenantWarehouse(runtime.warehouse, tenant_id)
    backend = runtime.settings.warehouse
    chunk = SERVER_LOOKUP_CHUNK if backend == "clickhouse" else max(len(ids), 1)
    for start in range(0, len(ids), chunk):
        params = {"ids": _ids_param(backend, ids[start : start + chunk]), "since": since}
        found.update(str(row[0]) for row in scoped.query(_STORED_IDS_SQL[backend], params).rows)
    return found


def event_row(event: TrackedEvent) -> tuple[object, ...]:
    """The `events` row of an event, in `COLUMNS` order."""
    return event_rows([event])[0]


def event_rows(events: Sequence[TrackedEvent]) -> list[tuple[object, ...]]:
    """The `events` rows of `events`, in `COLUMNS` order (a `WriterEvent` is its row, then its source)."""
    return list(map(_ROW, writer_events(events)))


def _by_tenant(events: Sequence[WriterEvent]) -> Iterator[tuple[int, list[WriterEvent]]]:
    tenants = set(map(_TENANT, events))
    if len(tenants) == 1:  # the common flush: one tenant, no grouping (~0.3 us per event)
        yield tenants.pop(), list(events)
        return
    grouped: dict[int, list[WriterEvent]] = {}
    for event in events:
        grouped.setdefault(event.tenant_id, []).append(event)
    yield from sorted(grouped.items())


def _unique_by_key(messages: Sequence[Sequence[WriterEvent]]) -> tuple[list[list[str]], dict[str, WriterEvent]]:
    """Each message's claim keys (`claim_key`), and the flush's events by claim key. A flush may
    repeat an id (a client retry, a duplicate delivery): its first occurrence wins."""
    message_keys: list[list[str]] = []
    unique: dict[str, WriterEvent] = {}
    for events in messages:
        keys = [claim_key(event) for event in events]
        for key, event in zip(keys, events, strict=True):
            if key not in unique:
                unique[key] = event
        message_keys.append(keys)
    return message_keys, unique


def partition_groups(events: Sequence[WriterEvent], max_partitions: int) -> list[list[WriterEvent]]:
    """`events` split so that no group spans more than `max_partitions` months (`events` is partitioned
    by `toYYYYMM(occurred_at)`): ClickHouse refuses an INSERT touching more than
    `max_partitions_per_insert_block` partitions, which would dead-letter a backfill."""
    # Live traffic spans one or two months: count them with a set before grouping anything. (Not by
    # the oldest and newest time: a message read by the model may mix naive and aware times.)
    if len({(d.year, d.month) for d in map(_OCCURRED_AT, events)}) <= max_partitions:
        return [list(events)]
    months: dict[tuple[int, int], list[WriterEvent]] = {}
    for event in events:
        months.setdefault((event.occurred_at.year, event.occurred_at.month), []).append(event)
    ordered = [months[key] for key in sorted(months)]
    return [
        [event for month in ordered[start : start + max_partitions] for event in month]
        for start in range(0, len(ordered), max_partitions)
    ]


def _insert_settings(runtime: Runtime, rows: Sequence[WriterEvent]) -> dict[str, str | int]:
    settings: dict[str, str | int] = {
        "insert_deduplication_token": block_token(rows),
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        # The five views on `events` fill their tables side by side instead of one after another:
        # the INSERT of 50,000 rows 9.6 -> 7.6 us per row (median of 5), the writer +7% (flushes are
        # serial; docs/performance.md, "Views in parallel").
        "parallel_view_processing": 1,
        # No merge of the block with itself before it is written: a flush never holds two rows of one
        # event id (`_unique_by_key`), and each view's block is already grouped by its table's sorting
        # key, so that merge found nothing to fold and only copied the rows. The INSERT of 50,000 rows
        # 5.65 -> 4.88 us per row (median of 12; docs/performance.md, "A sixth pass on the writer").
        "optimize_on_insert": 0,
    }
    if runtime.settings.warehouse == "clickhouse":
        settings.update(SERVER_INSERT_SETTINGS)
    return settings


def write_flush(runtime: Runtime, messages: Sequence[Sequence[TrackedEvent]]) -> FlushOutcome:
    """`flush` for events parsed by the model (tools and tests that build `TrackedEvent`s)."""
    return flush(runtime, [writer_events(events) for events in messages])


def flush(runtime: Runtime, messages: Sequence[Sequence[WriterEvent]]) -> FlushOutcome:
    """Store the events of `messages` so that any number of (possibly concurrent, regrouped) deliveries
    store each event once. Raises when nothing can be acknowledged."""
    message_keys, unique = _unique_by_key(messages)
    claims = Claims(runtime)
    taken = claims.acquire(list(unique))
    try:
        refusals: list[RetryableError | None] = []
        for keys in message_keys:
            busy = next((key for key in keys if key in taken), None) if taken else None
            refusals.append(
                None
                if busy is None
                else RetryableError("event id is being written by another flush", {"event_id": unique[busy].event_id})
            )
        writable = list(unique.values())
        if taken:
            allowed = {
                key for keys, refused in zip(message_keys, refusals, strict=True) if refused is None for key in keys
            }
            writable = [event for key, event in unique.items() if key in allowed]
        stored: set[str] = set()
        for tenant_id, events in _by_tenant(writable):
            since = lookup_since(map(_RECEIVED_AT, events), runtime.settings.writer_dedup_horizon_days)
            stored |= stored_event_ids(runtime, tenant_id, list(map(_EVENT_ID, events)), since)
        fresh = [event for event in writable if event.event_id not in stored]
        if fresh:
            claims.check_fresh()
            for group in partition_groups(fresh, runtime.settings.writer_partitions_per_insert):
                rows = list(map(_ROW, group))
                runtime.warehouse.insert("events", COLUMNS, rows, _insert_settings(runtime, group))
                metering.events_accepted(meter_for(runtime), group)
        notify_users_changed(runtime, writable)
    except Exception:
        claims.release()
        raise
    claims.release()
    total = sum(len(keys) for keys, refused in zip(message_keys, refusals, strict=True) if refused is None)
    return FlushOutcome(WriteReport(sent=len(fresh), skipped=total - len(fresh)), refusals)


def write_events(runtime: Runtime, events: Sequence[TrackedEvent]) -> WriteReport:
    """One message's events as a flush of its own; raises `RetryableError` when another flush holds an id."""
    outcome = write_flush(runtime, [events])
    if outcome.refusals[0] is not None:
        raise outcome.refusals[0]
    return outcome.report


def notify_users_changed(runtime: Runtime, events: Sequence[WriterEvent]) -> None:
    """One `UsersChanged` per tenant of the flush, watermarked with the newest receive time."""
    for tenant_id, group in _by_tenant(events):
        watermark: datetime = max(map(_RECEIVED_AT, group))
        latest: datetime = max(map(_OCCURRED_AT, group))
        notice = SegmentComputeEnvelope(
            message=UsersChanged(
                tenant_id=tenant_id,
                user_ids=sorted(set(map(_USER_ID, group))),
                watermark=watermark,
                effective_at=latest if latest > watermark else None,
            )
        )
        runtime.bus.publish(
            Topic.SEGMENT_COMPUTE,
            notice.model_dump_json().encode(),
            {"tenant_id": str(tenant_id), "kind": "users_changed"},
        )


@dataclass(frozen=True)
class Delivery:
    message: BusMessage
    events: list[WriterEvent]


class EventWriter:
    """One writer instance: the group commit its concurrent deliveries share."""

    def __init__(self, runtime: Runtime) -> None:
        # Weak: the registry below forgets the writer with its runtime (tests build many runtimes).
        self._runtime = weakref.ref(runtime)
        settings = runtime.settings
        self.commit: GroupCommit[Delivery] = GroupCommit(
            self._flush,
            FlushBounds(settings.writer_flush_rows, settings.writer_flush_bytes, settings.writer_flush_seconds),
        )

    def write(self, delivery: Delivery) -> None:
        """Block until the delivery's events are durable; raise to nack it."""
        self.commit.submit(delivery, len(delivery.events), len(delivery.message.data))

    def _flush(self, deliveries: Sequence[Delivery]) -> list[BaseException | None]:
        started = time.perf_counter()
        runtime = self._runtime()
        # Every delivery of the flush is being written by a caller that holds the runtime.
        assert runtime is not None, "the writer's runtime is gone"
        outcome = flush(runtime, [d.events for d in deliveries])
        log.info(
            "events written",
            extra={
                "function": "event_writer",
                "messages": len(deliveries),
                "refused": sum(r is not None for r in outcome.refusals),
                "sent": outcome.report.sent,
                "skipped": outcome.report.skipped,
                "seconds": round(time.perf_counter() - started, 4),
            },
        )
        return list(outcome.refusals)


# One writer per live runtime, by identity (a `Runtime` is not hashable); an entry leaves with its runtime.
_writers: dict[int, EventWriter] = {}
_writers_lock = threading.Lock()


def event_writer_for(runtime: Runtime) -> EventWriter:
    """The runtime's writer instance (one group commit per process and runtime)."""
    with _writers_lock:
        writer = _writers.get(id(runtime))
        if writer is None:
            writer = _writers[id(runtime)] = EventWriter(runtime)
            weakref.finalize(runtime, _writers.pop, id(runtime), None)
        return writer


def _tenant_attribute(message: BusMessage) -> int | None:
    value = message.attributes.get("tenant_id", "")
    return int(value) if value.isdigit() else None


def handle_event_batch(message: BusMessage, runtime: Runtime) -> None:
    """Bus handler for `events`. Raising nacks (redelivery); the last attempt is recorded before dead-letter.
    A message is read without the model when its events can be vouched for (`read_batch`); the model
    parses (and refuses) everything else."""
    events = read_batch(message.data)
    parsed: list[TrackedEvent] = []
    if events is None:
        try:
            parsed = parse_message(message, EventBatch).events
        except PermanentError as exc:
            tenant_id = _tenant_attribute(message)
            if tenant_id is not None:
                record_errors(
                    runtime,
                    tenant_id,
                    "writer",
                    [ErrorRecord("malformed_message", f"bus message {message.message_id}: {exc.message}")],
                )
            raise
    try:
        if events is None:
            events = writer_events(parsed)
        event_writer_for(runtime).write(Delivery(message, events))
    except Exception as exc:
        if message.delivery_attempt >= dead_letters.last_attempt("event_writer", runtime.settings):
            # For the tenant's error log, when the warehouse takes it: the message itself is archived
            # for replay by the consumer (segops.bus.dead_letters), outside the warehouse.
            with contextlib.suppress(Exception):
                _record_dead_lettered(runtime, message, [e.tenant_id for e in events or parsed], exc)
        raise


def _record_dead_lettered(runtime: Runtime, message: BusMessage, tenant_ids: Sequence[int], exc: Exception) -> None:
    """One record per tenant of the message's events (`tenant_ids`: one per event)."""
    for tenant_id, count in sorted(Counter(tenant_ids).items()):
        record_errors(
            runtime,
            tenant_id,
            "writer",
            [
                ErrorRecord(
                    "dead_lettered",
                    f"bus message {message.message_id} with {count} events failed "
                    f"{message.delivery_attempt} times ({type(exc).__name__}); sent to the dead-letter topic",
                )
            ],
        )
