"""The `event_writer` function: `EventBatch` messages → `events`, exactly once under at-least-once delivery.

A message is written with at most two INSERTs (docs/ingestion.md explains the design):
1. Events without a client `message_id` have random ids fixed at the edge, so the only way to see them
   twice is another delivery of the same message content (Pub/Sub redelivery, a publisher retry, a
   concurrent duplicate delivery, a retry after a crash). They go in ONE insert whose
   `insert_deduplication_token` is derived from their ids: every delivery sends identical rows with an
   identical token, and ClickHouse drops what it already holds, part by part (a block spanning several
   month partitions is several parts; each gets `token_N`, so a crash between parts is also retried safely).
2. Events with a `message_id` have ids derived from (tenant, message_id); a client retry arrives in a
   *different* message, so tokens cannot catch it. They are claimed in the cache (SET NX, a lease longer
   than the function timeout) so two messages never write one id at the same time, looked up through the
   `by_event_id` projection, and only the absent ones are inserted.
3. `UsersChanged` then goes to `segment-compute`, also when everything was a duplicate: an earlier
   delivery may have died between its insert and its publish.
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
CLAIM_PREFIX = "ingest-claim:"
# Longer than the event_writer timeout (manifest): a live writer never loses its claim mid-write.
CLAIM_LEASE_SECONDS = 180.0


@dataclass(frozen=True)
class WriteReport:
    """`sent`: rows handed to ClickHouse (it drops blocks it already holds); `skipped`: client-keyed
    events found already stored."""

    sent: int
    skipped: int


def block_token(kind: str, events: Sequence[TrackedEvent]) -> str:
    """A token that only the same events (in the same order) produce."""
    digest = hashlib.blake2b(digest_size=16)
    for event in events:
        digest.update(event.event_id.bytes)
    return f"ev-{kind}-{len(events)}-{digest.hexdigest()}"


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
        """Claim every id in one cache round trip (plus one more for ids this message already holds)."""
        cache = self.runtime.cache
        keys = [_claim_key(event) for event in events]
        added = cache.add_many(keys, self.owner, CLAIM_LEASE_SECONDS)
        self.held = [key for key, ok in zip(keys, added, strict=True) if ok]
        taken = [(key, event) for key, event, ok in zip(keys, events, added, strict=True) if not ok]
        if not taken:
            return
        # An earlier delivery of this same message may hold them: the owner is the message's content.
        owners = cache.get_many([key for key, _ in taken])
        for (key, event), owner in zip(taken, owners, strict=True):
            if owner != self.owner:
                # Another message is writing this id right now (or died holding it: the lease expires).
                # Nack: on redelivery the id is either stored (and dropped here) or free to claim.
                self.release()
                raise RetryableError("event id is being written by another message", {"event_id": str(event.event_id)})
            self.held.append(key)

    def release(self) -> None:
        cache = self.runtime.cache
        owners = cache.get_many(self.held)
        mine = [key for key, owner in zip(self.held, owners, strict=True) if owner == self.owner]
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


def event_row(event: TrackedEvent) -> tuple[object, ...]:
    """The `events` row of an event, in `COLUMNS` order."""
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


def write_events(runtime: Runtime, events: Sequence[TrackedEvent]) -> WriteReport:
    """Insert `events` so that any number of (possibly concurrent) deliveries store each event once."""
    events = _first_of_each_id(events)
    unkeyed = [e for e in events if not e.message_id]
    keyed = [e for e in events if e.message_id]
    sent = 0
    if unkeyed:
        runtime.warehouse.insert(
            "events",
            COLUMNS,
            [event_row(e) for e in unkeyed],
            {"insert_deduplication_token": block_token("m", unkeyed)},
        )
        sent += len(unkeyed)
    if keyed:
        claims = Claims(runtime, _batch_key(events))
        claims.acquire(keyed)
        try:
            stored: set[UUID] = set()
            for tenant_id, group in _by_tenant(keyed):
                stored |= stored_event_ids(runtime, tenant_id, [e.event_id for e in group])
            fresh = [e for e in keyed if e.event_id not in stored]
            if fresh:
                runtime.warehouse.insert(
                    "events",
                    COLUMNS,
                    [event_row(e) for e in fresh],
                    {"insert_deduplication_token": block_token("k", fresh)},
                )
                sent += len(fresh)
        finally:
            claims.release()
    return WriteReport(sent=sent, skipped=len(events) - sent)


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
            "sent": report.sent,
            "skipped": report.skipped,
            "attempt": message.delivery_attempt,
        },
    )
