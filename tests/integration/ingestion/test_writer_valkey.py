"""Two event_writer instances claiming through one real Valkey server, as production runs them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from segops.bus.base import BusMessage, Topic
from segops.bus.local import LocalBus
from segops.cache.redis_backend import KEYS_PER_COMMAND
from segops.config import Settings
from segops.errors import RetryableError
from segops.ingestion.events import Stamp, assign_event_ids, encode_batch, validate_events
from segops.ingestion.writer import claim_key, handle_event_batch
from segops.ingestion.writer_rows import read_batch
from segops.runtime import Runtime, build_runtime
from segops.warehouse.migrations import migrate

TENANT = 7


def _messages(count: int, size: int) -> list[bytes]:
    """`count` canonical messages of `size` events each; every tenth event carries a client message id,
    the same in messages 2k and 2k+1 (a client retry in another request)."""
    messages = []
    for m in range(count):
        stamp = Stamp(TENANT, datetime.now(UTC), "api")
        items = [
            {
                "user_id": f"user-{(m * size + i) % 997}",
                "event_type": "order_placed",
                "payload": {"total": 2},
                **({"message_id": f"client-{m // 2}-{i}"} if i % 10 == 0 else {}),
            }
            for i in range(size)
        ]
        accepted = [e for e in validate_events(items, stamp) if isinstance(e, dict)]
        assign_event_ids(accepted)
        message = encode_batch(accepted)
        assert read_batch(message) is not None  # read as the edge's messages are
        messages.append(message)
    return messages


def _deliver_until_acked(runtime: Runtime, data: bytes, name: str, errors: list[BaseException]) -> None:
    """Pub/Sub redelivers a nacked message: retried until the writer acknowledges it."""
    deadline = time.monotonic() + 120
    attempt = 1
    while time.monotonic() < deadline:
        try:
            handle_event_batch(BusMessage(Topic.EVENTS, data, {"tenant_id": str(TENANT)}, name, attempt), runtime)
            return
        except RetryableError:
            attempt += 1
            time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
            return
    errors.append(TimeoutError(f"{name} was never acknowledged"))


def test_two_instances_delivered_the_same_messages_at_once_store_each_event_once(
    settings: Settings, valkey_url: str
) -> None:
    # GIVEN two writer instances (own processes in production: own runtime, own group commit, own
    # Valkey client) sharing one Valkey server and one warehouse
    shared = settings.model_copy(update={"cache": "redis", "redis_url": valkey_url, "writer_flush_seconds": 0.05})
    first, second = build_runtime(shared, bus=LocalBus()), build_runtime(shared, bus=LocalBus())
    migrate(first.warehouse)
    # AND messages whose flushes claim several Valkey steps of ids, some ids repeated across messages
    messages = _messages(4, 5 * KEYS_PER_COMMAND)
    events = [event for data in messages for event in read_batch(data) or []]
    unique = {event.event_id: event for event in events}
    assert len(unique) < len(events)
    # WHEN both instances get every message at the same moment (a duplicate delivery of each)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_deliver_until_acked, args=(runtime, data, f"m{i}", errors))
        for i, data in enumerate(messages)
        for runtime in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    # THEN every delivery was acknowledged, every event is stored once, and the view tables counted
    # each event once
    assert errors == []
    warehouse = first.warehouse
    stored = warehouse.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE tenant_id = {t:UInt64}", {"t": TENANT}
    )
    assert stored.rows == [(len(unique), len(unique))]
    counted = warehouse.query("SELECT sum(events) FROM user_day_states WHERE tenant_id = {t:UInt64}", {"t": TENANT})
    assert counted.scalar() == len(unique)
    # AND no claim outlives its flush
    assert [first.cache.get(claim_key(event)) for event in unique.values()] == [None] * len(unique)
