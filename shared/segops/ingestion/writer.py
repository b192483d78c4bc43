"""The `event_writer` function: `EventBatch` messages → `events`, exactly once under at-least-once delivery.

How a message is written (docs/ingestion.md explains why each step is needed):
1. Blocks are fixed by the message content, before anything else: events grouped by month partition,
   then chunked in message order. Each block's `insert_deduplication_token` is derived from the
   event ids it was built from, so every delivery of the same message (Pub/Sub redelivery, a
   publisher retry, a concurrent duplicate delivery) rebuilds the same blocks with the same tokens and
   ClickHouse drops the blocks it already holds. One block = one partition = one part, written atomically,
   so a crash mid-message leaves whole blocks behind, never half of one.
2. Events with a client `message_id` have ids derived from (tenant, message_id); a retry arrives in a
   *different* message, so tokens cannot catch it. Those events are claimed in the cache (SET NX, lease
   longer than the function timeout) so two messages never write the same id at once, then looked up
   through the `by_event_id` projection and dropped if already stored.
3. After the write, `UsersChanged` goes to `segment-compute` (also when everything was a duplicate:
   the first delivery may have died between its insert and its publish).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson

from segops.bus.base import BusMessage, Topic
from segops.bus.cloudevents import parse_message
from segops.errors import PermanentError, RetryableError
from segops.ingestion.error_log import ErrorRecord, record_errors
from segops.messages import EventBatch, SegmentComputeEnvelope, TrackedEvent, UsersChanged
from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

log = logging.getLogger("segops.ingestion.writer")

COLUMNS = ("tenant_id", "event_id", "message_id", "user_id", "event_type", "occurred_at", "received_at", "payload")
MAX_BLOCK_EVENTS = 10_000
CLAIM_PREFIX = "ingest-claim:"
# Longer than the event_writer timeout (manifest): a live writer never loses its claim mid-write.
CLAIM_LEASE_SECONDS = 180.0


@dataclass(frozen=True)
class Block:
    token: str
    events: list[TrackedEvent]


@dataclass(frozen=True)
class WriteReport:
    inserted: int
    duplicates: int
    user_ids: list[str]


def plan_blocks(events: Sequence[TrackedEvent], max_block: int = MAX_BLOCK_EVENTS) -> list[Block]:
    """Deterministic blocks for a message: same content → same blocks and tokens on every delivery."""
    by_partition: dict[tuple[int, int, int], list[TrackedEvent]] = {}
    for event in events:
        moment = event.occurred_at
        by_partition.setdefault((event.tenant_id, moment.year, moment.month), []).append(event)
    blocks = []
    for (tenant_id, year, month), group in sorted(by_partition.items()):
        for start in range(0, len(group), max_block):
            chunk = group[start : start + max_block]
            digest = hashlib.blake2b(digest_size=16)
            for event in chunk:
                digest.update(event.event_id.bytes)
            blocks.append(Block(f"ev-{tenant_id}-{year:04d}{month:02d}-{digest.hexdigest()}", chunk))
    return blocks


def _batch_key(events: Sequence[TrackedEvent]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for event in events:
        digest.update(event.event_id.bytes)
    return digest.hexdigest().encode()


def _claim_key(event: TrackedEvent) -> str:
    return f"{CLAIM_PREFIX}{event.tenant_id}:{event.event_id}"


class Claims:
    """Cache claims on client-keyed event ids: at most one message writes a given id at a time."""

    def __init__(self, runtime: Runtime, owner: bytes) -> None:
        self.runtime = runtime
        self.owner = owner
        self.held: list[str] = []

    def acquire(self, events: Sequence[TrackedEvent]) -> None:
        cache = self.runtime.cache
        for event in events:
            key = _claim_key(event)
            if cache.add(key, self.owner, CLAIM_LEASE_SECONDS) or cache.get(key) == self.owner:
                self.held.append(key)
                continue
            # Another message is writing this id right now (or died holding it: the lease expires).
            # Nack: on redelivery the id is either stored (and dropped here) or free to claim.
            self.release()
            raise RetryableError("event id is being written by another message", {"event_id": str(event.event_id)})

    def release(self) -> None:
        cache = self.runtime.cache
        mine = [key for key in self.held if cache.get(key) == self.owner]
        if mine:
            cache.delete(*mine)
        self.held = []


def stored_event_ids(runtime: Runtime, tenant_id: int, ids: Sequence[UUID]) -> set[UUID]:
    """Which of `ids` are already in `events` (an index lookup through the `by_event_id` projection)."""
    if not ids:
        return set()
    found: set[UUID] = set()
    scoped = TenantWarehouse(runtime.warehouse, tenant_id)
    for start in range(0, len(ids), 1000):
        rows = scoped.query(
            "SELECT event_id FROM events WHERE tenant_id = {tenant_id:UInt64} AND event_id IN {ids:Array(UUID)}",
            {"ids": list(ids[start : start + 1000])},
        ).rows
        found.update(row[0] if isinstance(row[0], UUID) else UUID(str(row[0])) for row in rows)
    return found


def _row(event: TrackedEvent) -> tuple[object, ...]:
    return (
        event.tenant_id,
        event.event_id,
        event.message_id or "",
        event.user_id,
        event.event_type,
        event.occurred_at,
        event.received_at,
        orjson.dumps(event.payload).decode(),
    )


def _by_tenant(events: Sequence[TrackedEvent]) -> Iterator[tuple[int, list[TrackedEvent]]]:
    grouped: dict[int, list[TrackedEvent]] = {}
    for event in events:
        grouped.setdefault(event.tenant_id, []).append(event)
    yield from sorted(grouped.items())


def _first_of_each_id(events: Sequence[TrackedEvent]) -> list[TrackedEvent]:
    """A batch may repeat a client message id; its first occurrence wins, as a retry would."""
    seen: set[tuple[int, UUID]] = set()
    unique = []
    for event in events:
        key = (event.tenant_id, event.event_id)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


def write_events(runtime: Runtime, events: Sequence[TrackedEvent], max_block: int = MAX_BLOCK_EVENTS) -> WriteReport:
    """Insert `events` so that any number of (possibly concurrent) deliveries store each event once."""
    events = _first_of_each_id(events)
    keyed = [e for e in events if e.message_id]
    claims = Claims(runtime, _batch_key(events))
    claims.acquire(keyed)
    try:
        stored: set[UUID] = set()
        for tenant_id, group in _by_tenant(keyed):
            stored |= stored_event_ids(runtime, tenant_id, [e.event_id for e in group])
        inserted = 0
        for block in plan_blocks(events, max_block):
            rows = [_row(e) for e in block.events if not (e.message_id and e.event_id in stored)]
            if rows:
                runtime.warehouse.insert("events", COLUMNS, rows, {"insert_deduplication_token": block.token})
                inserted += len(rows)
    finally:
        claims.release()
    users = sorted({e.user_id for e in events})
    return WriteReport(inserted=inserted, duplicates=len(events) - inserted, user_ids=users)


def notify_users_changed(runtime: Runtime, events: Sequence[TrackedEvent]) -> None:
    """One `UsersChanged` per tenant of the message, watermarked with the newest receive time."""
    for tenant_id, group in _by_tenant(events):
        watermark: datetime = max(e.received_at for e in group)
        notice = SegmentComputeEnvelope(
            message=UsersChanged(tenant_id=tenant_id, user_ids=sorted({e.user_id for e in group}), watermark=watermark)
        )
        runtime.bus.publish(
            Topic.SEGMENT_COMPUTE,
            notice.model_dump_json().encode(),
            {"tenant_id": str(tenant_id), "kind": "users_changed"},
        )


def _tenant_attribute(message: BusMessage) -> int | None:
    value = message.attributes.get("tenant_id", "")
    return int(value) if value.isdigit() else None


def handle_event_batch(message: BusMessage, runtime: Runtime) -> None:
    """Bus handler for `events`. Raising nacks (redelivery); the last attempt is recorded before dead-letter."""
    try:
        batch = parse_message(message, EventBatch)
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
        report = write_events(runtime, batch.events)
        notify_users_changed(runtime, batch.events)
    except Exception as exc:
        if message.delivery_attempt >= runtime.settings.bus_max_attempts:
            for tenant_id, group in _by_tenant(batch.events):
                record_errors(
                    runtime,
                    tenant_id,
                    "writer",
                    [
                        ErrorRecord(
                            "dead_lettered",
                            f"bus message {message.message_id} with {len(group)} events failed "
                            f"{message.delivery_attempt} times ({type(exc).__name__}); sent to the dead-letter topic",
                        )
                    ],
                )
        raise
    log.info(
        "events written",
        extra={
            "function": "event_writer",
            "message_id": message.message_id,
            "inserted": report.inserted,
            "duplicates": report.duplicates,
            "attempt": message.delivery_attempt,
        },
    )
