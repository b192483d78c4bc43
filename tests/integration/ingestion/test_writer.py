"""The event writer stores each event exactly once under redelivery, client retries, crashes and races."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from segops.bus.base import Topic
from segops.errors import RetryableError
from segops.ingestion.events import Stamp, assign_event_ids, encode_batch, event_id_for, validate_events
from segops.ingestion.writer import Claims, claim_key, write_events
from segops.ingestion.writer_rows import read_batch
from segops.localstack import LocalStack
from segops.messages import EventBatch, SegmentComputeEnvelope, TrackedEvent, UsersChanged

from tests.support.api import Account, Api
from tests.support.ingestion import FlakyWarehouse, deliver, error_rows, record_topic, stored_events

BATCH = "/api/ingestion/track/batch/"


def _event(tenant_id: int, user_id: str, message_id: str | None = None, **kw: object) -> TrackedEvent:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "tenant_id": tenant_id,
        "event_id": event_id_for(tenant_id, message_id) if message_id else uuid.uuid4(),
        "message_id": message_id,
        "user_id": user_id,
        "event_type": "page_viewed",
        "occurred_at": now,
        "received_at": now,
        "payload": {"n": 1},
    }
    values.update(kw)
    return TrackedEvent.model_validate(values)


def test_same_bus_message_delivered_twice_is_stored_once(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN a batch accepted over HTTP and delivered by the bus
    seen = record_topic(stack, Topic.EVENTS)
    events = [{"user_id": f"u{i}", "event_type": "page_viewed"} for i in range(20)]
    assert api.post(BATCH, {"events": events}, headers=account.key).status_code == 202
    stack.bus.drain()
    # WHEN Pub/Sub delivers the very same message again (an ack lost on the way)
    assert deliver(stack, "event_writer", seen[0]) == 200
    # THEN each event is stored once
    assert len(stored_events(stack, account.tenant_id)) == 20


def test_client_retry_with_same_message_id_is_stored_once(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN an event sent with a message_id, then retried (new request, new bus message, later receive time)
    event = {"user_id": "u1", "event_type": "order_placed", "message_id": "order-1-placed", "payload": {"total": 5}}
    assert (
        api.post(BATCH, {"events": [event, {"user_id": "u2", "event_type": "x"}]}, headers=account.key).status_code
        == 202
    )
    stack.bus.drain()
    assert api.post("/api/ingestion/track/", event, headers=account.key).status_code == 202
    assert api.post(BATCH, {"events": [event, event]}, headers=account.key).get_json() == {"queued": 2, "skipped": 0}
    stack.bus.drain()
    # THEN one copy of it (and the other event of the first batch)
    rows = stored_events(stack, account.tenant_id)
    assert sorted((r["user_id"], r["message_id"]) for r in rows) == [("u1", "order-1-placed"), ("u2", "")]
    assert rows[0]["event_id"] == event_id_for(account.tenant_id, "order-1-placed")


def test_message_ids_are_per_tenant(stack: LocalStack, api: Api) -> None:
    first, second = api.signup(), api.signup()
    event = {"user_id": "u1", "event_type": "e", "message_id": "same"}
    for account in (first, second):
        assert api.post("/api/ingestion/track/", event, headers=account.key).status_code == 202
    stack.bus.drain()
    assert len(stored_events(stack, first.tenant_id)) == 1
    assert len(stored_events(stack, second.tenant_id)) == 1


def test_failure_between_partition_inserts_then_redelivery_stores_each_event_once(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN a message whose events span two months, written one month per INSERT
    stack.runtime.settings.writer_partitions_per_insert = 1
    tenant = account.tenant_id
    october = datetime(2026, 10, 15, tzinfo=UTC)
    november = datetime(2026, 11, 2, tzinfo=UTC)
    events = [
        *[_event(tenant, f"oct-{i}", f"m-oct-{i}" if i % 2 else None, occurred_at=october) for i in range(4)],
        *[_event(tenant, f"nov-{i}", f"m-nov-{i}" if i % 2 else None, occurred_at=november) for i in range(4)],
    ]
    flaky = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on={2})
    stack.runtime.warehouse = flaky
    # WHEN the second INSERT fails and the bus redelivers
    stack.bus.publish(Topic.EVENTS, EventBatch(events=events).model_dump_json().encode(), {"tenant_id": str(tenant)})
    stack.bus.drain()
    # THEN the first attempt wrote October, the retry only November, and every event is there once
    assert flaky.calls == 3
    rows = stored_events(stack, tenant)
    assert sorted(r["user_id"] for r in rows) == sorted(e.user_id for e in events)
    assert not stack.bus.dead_letters


def test_redelivery_after_a_full_write_that_died_before_acking(stack: LocalStack, account: Account) -> None:
    # GIVEN a message fully written whose compute notice was never published (crash before ack)
    tenant = account.tenant_id
    events = [_event(tenant, f"u{i}", f"m{i}" if i % 2 else None) for i in range(10)]
    write_events(stack.runtime, events)
    notices = record_topic(stack, Topic.SEGMENT_COMPUTE)
    # WHEN it is delivered again
    stack.bus.publish(Topic.EVENTS, EventBatch(events=events).model_dump_json().encode(), {"tenant_id": str(tenant)})
    stack.bus.drain()
    # THEN no duplicates, and the users-changed notice still goes out
    assert len(stored_events(stack, tenant)) == 10
    [notice] = [SegmentComputeEnvelope.model_validate_json(m.data).message for m in notices]
    assert isinstance(notice, UsersChanged)
    assert notice.tenant_id == tenant and notice.user_ids == sorted(e.user_id for e in events)
    assert notice.watermark == max(e.received_at for e in events)


def test_an_id_claimed_by_a_message_in_flight_makes_the_other_message_retry(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN message A (in flight, holding its claims) and message B retrying one of A's client events
    tenant = account.tenant_id
    shared = _event(tenant, "u-shared", "retry-me")
    a = [shared, _event(tenant, "a-only")]
    b = [_event(tenant, "u-shared", "retry-me", payload={"n": 2}), _event(tenant, "b-only")]
    in_flight = Claims(stack.runtime)
    in_flight.acquire([claim_key(shared)])
    # WHEN B is written while A holds the claim
    with pytest.raises(RetryableError):
        write_events(stack.runtime, b)
    # THEN B wrote nothing (it is nacked whole); once A is done, B's retry stores only its own event
    assert stored_events(stack, tenant) == []
    in_flight.release()
    write_events(stack.runtime, a)
    report = write_events(stack.runtime, b)
    assert (report.sent, report.skipped) == (1, 1)
    rows = stored_events(stack, tenant)
    assert sorted(r["user_id"] for r in rows) == ["a-only", "b-only", "u-shared"]
    assert orjson.loads(next(r["payload"] for r in rows if r["user_id"] == "u-shared")) == {"n": 1}


def _write_concurrently(stack: LocalStack, messages: list[list[TrackedEvent]]) -> list[BaseException]:
    """Each message written on its own thread; a nacked one comes back (retried) until written."""
    errors: list[BaseException] = []

    def writer(events: list[TrackedEvent]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                write_events(stack.runtime, events)
                return
            except RetryableError:
                time.sleep(0.005)
            except BaseException as exc:
                errors.append(exc)
                return
        errors.append(TimeoutError("never written"))

    threads = [threading.Thread(target=writer, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_writers_of_one_client_event_store_it_once(stack: LocalStack, account: Account) -> None:
    # GIVEN eight different messages all carrying a retry of the same client event, written concurrently
    tenant = account.tenant_id
    messages = [[_event(tenant, "u", "dup"), _event(tenant, f"own-{i}")] for i in range(8)]
    assert _write_concurrently(stack, messages) == []
    # THEN the shared event exists once, every message's own event once
    users = sorted(r["user_id"] for r in stored_events(stack, tenant))
    assert users == sorted(["u", *[f"own-{i}" for i in range(8)]])


def test_concurrent_duplicate_deliveries_of_one_message_store_once(stack: LocalStack, account: Account) -> None:
    tenant = account.tenant_id
    events = [_event(tenant, f"u{i}", f"m{i}" if i % 3 == 0 else None) for i in range(50)]
    assert _write_concurrently(stack, [events] * 4) == []
    assert len(stored_events(stack, tenant)) == 50


def test_poison_message_is_dead_lettered_after_max_attempts_and_recorded(stack: LocalStack, account: Account) -> None:
    # GIVEN a warehouse that rejects every insert into events
    tenant = account.tenant_id
    stack.runtime.warehouse = FlakyWarehouse(stack.runtime.warehouse, "events", fail_on={-1})
    events = [_event(tenant, "u1"), _event(tenant, "u2")]
    # WHEN a message is published and the bus keeps retrying
    stack.bus.publish(Topic.EVENTS, EventBatch(events=events).model_dump_json().encode(), {"tenant_id": str(tenant)})
    stack.bus.drain()
    # THEN it goes to events-dead-letter after the manifest's attempts, and the tenant can see why
    [dead] = list(stack.bus.dead_letters)
    assert dead.delivery_attempt == stack.manifest.function("event_writer").trigger.max_delivery_attempts == 100
    rows = error_rows(stack, tenant)
    assert [(r["error_type"], r["source"]) for r in rows] == [("dead_lettered", "writer")]
    assert "2 events" in rows[0]["detail"] and "ConnectionError" in rows[0]["detail"]


def test_malformed_message_is_recorded_and_not_retried(stack: LocalStack, account: Account) -> None:
    stack.bus.publish(Topic.EVENTS, b'{"events": [{"nope": 1}]}', {"tenant_id": str(account.tenant_id)})
    delivered = stack.bus.drain()
    assert delivered == 1 and not stack.bus.dead_letters
    [row] = error_rows(stack, account.tenant_id)
    assert row["error_type"] == "malformed_message"


def test_a_payload_integer_beyond_64_bits_is_stored_in_any_spelling_of_the_message(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN a message the edge did not write (its own spelling, read by the model) whose payloads hold
    # an integer beyond 64 bits and non-finite floats, and the same events in the edge's spelling
    tenant = account.tenant_id
    model = EventBatch(events=[_event(tenant, "u1"), _event(tenant, "u2")]).model_dump(mode="json")
    model["events"][1]["payload"] = {"n": 2**64 + 1, "nan": float("nan"), "inf": float("-inf"), "a": [2**70]}
    stamp = Stamp(tenant, datetime.now(UTC), "api")
    accepted = validate_events(
        [{"user_id": u, "event_type": "page_viewed", "payload": {"n": 1}} for u in ("u3", "u4")], stamp
    )
    assign_event_ids([e for e in accepted if isinstance(e, dict)])
    canonical = encode_batch(accepted).replace(b'{"n":1}', b'{"n":18446744073709551617}', 1)
    assert read_batch(canonical) is not None  # read without the model
    # WHEN the bus delivers both
    stack.bus.publish(Topic.EVENTS, json.dumps(model).encode(), {"tenant_id": str(tenant)})
    stack.bus.publish(Topic.EVENTS, canonical, {"tenant_id": str(tenant)})
    stack.bus.drain()
    # THEN every event is stored once, each payload with its value (no float for the integer; NaN and
    # infinities as null, as orjson writes them), and nothing is dead-lettered or recorded as an error
    assert not stack.bus.dead_letters and not error_rows(stack, tenant)
    stored = {r["user_id"]: json.loads(r["payload"]) for r in stored_events(stack, tenant)}
    assert stored == {
        "u1": {"n": 1},
        "u2": {"n": 2**64 + 1, "nan": None, "inf": None, "a": [2**70]},
        "u3": {"n": 2**64 + 1},
        "u4": {"n": 1},
    }


def test_context_identified_keeps_latest_properties_by_occurred_at_then_received_at(
    stack: LocalStack, account: Account
) -> None:
    # GIVEN identify events arriving out of order, and a tie on occurred_at broken by received_at
    tenant = account.tenant_id
    t0 = datetime(2026, 5, 1, tzinfo=UTC)

    def identify(user: str, occurred: datetime, received: datetime, plan: str) -> TrackedEvent:
        return _event(
            tenant,
            user,
            event_type="context_identified",
            occurred_at=occurred,
            received_at=received,
            payload={"plan": plan},
        )

    write_events(stack.runtime, [identify("a", t0 + timedelta(days=2), t0, "pro")])
    write_events(stack.runtime, [identify("a", t0 + timedelta(days=1), t0 + timedelta(days=3), "free")])
    write_events(stack.runtime, [identify("b", t0, t0 + timedelta(hours=1), "late-receipt")])
    write_events(stack.runtime, [identify("b", t0, t0, "early-receipt")])
    write_events(stack.runtime, [_event(tenant, "a", event_type="page_viewed", payload={"plan": "ignored"})])
    # WHEN the current properties are read (merged state, no scan of events)
    rows = stack.runtime.warehouse.query(
        "SELECT user_id, argMaxMerge(properties) AS properties FROM user_properties "
        "WHERE tenant_id = {t:UInt64} GROUP BY user_id ORDER BY user_id",
        {"t": tenant},
    ).rows
    # THEN the latest by occurred_at wins, ties by received_at; other events never touch properties
    assert [(u, orjson.loads(p)) for u, p in rows] == [("a", {"plan": "pro"}), ("b", {"plan": "late-receipt"})]
