"""The `Bus` contract: the local bus (Pub/Sub semantics in-process, delivering through the real
functions-framework CloudEvent entry point) and the Pub/Sub publisher against a gRPC Pub/Sub server."""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import functions_framework
import orjson
import pytest
from segops.bus.base import Bus, BusMessage, Topic, dead_letter_topic
from segops.bus.cloudevents import decode_data, from_cloudevent, to_cloudevent
from segops.bus.local import LocalBus
from segops.bus.pubsub import PubSubBus
from segops.localstack import LocalStack
from segops.manifest import PubSubTrigger, RetryPolicy

from tests.support.fixtures import load_fixture
from tests.support.servers import PubSubServer

PROBE_SOURCE = Path(__file__).parent / "functions" / "bus_probe" / "main.py"
PROJECT = "segops-test"

Received = Callable[[str], list[tuple[bytes, dict[str, str]]]]


@pytest.fixture(params=["local", "pubsub"])
def bus_and_received(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Bus, Received]]:
    """A bus plus a way to see what its subscribers (or the Pub/Sub service) received per topic."""
    if request.param == "local":
        local = LocalBus(max_attempts=3, retry_base_seconds=0)
        got: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        for topic in Topic:
            local.subscribe(topic, "recorder", lambda m: got.setdefault(m.topic, []).append((m.data, m.attributes)))

        def received_local(topic: str) -> list[tuple[bytes, dict[str, str]]]:
            local.drain()
            return got.get(topic, [])

        yield local, received_local
        return
    server: PubSubServer = request.getfixturevalue("pubsub_server")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", server.host)
    publisher = PubSubBus(PROJECT)
    for topic in Topic:
        server.topics.add(publisher.topic_path(topic))
    already = len(server.published)

    def received_pubsub(topic: str) -> list[tuple[bytes, dict[str, str]]]:
        path = publisher.topic_path(topic)
        return [(m.data, m.attributes) for m in server.published[already:] if m.topic == path]

    yield publisher, received_pubsub


def test_publish_delivers_topic_data_and_attributes(bus_and_received: tuple[Bus, Received]) -> None:
    bus, received = bus_and_received
    # WHEN two messages are published to different topics
    first = bus.publish(Topic.EVENTS, b'{"user_id": "u1"}', {"tenant_id": "7", "source": "track"})
    second = bus.publish(Topic.SEGMENT_COMPUTE, bytes(range(256)))
    # THEN each arrives on its own topic with data and attributes intact, under distinct ids
    assert first and second and first != second
    assert received(Topic.EVENTS) == [(b'{"user_id": "u1"}', {"tenant_id": "7", "source": "track"})]
    assert received(Topic.SEGMENT_COMPUTE) == [(bytes(range(256)), {})]
    assert received(Topic.MEMBERSHIP_CHANGES) == []


def test_check_and_worker_status(bus_and_received: tuple[Bus, Received]) -> None:
    bus, _ = bus_and_received
    bus.check()
    assert bus.worker_status() == "ok"


def test_pubsub_publish_to_missing_topic_fails(pubsub_server: PubSubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.host)
    publisher = PubSubBus("segops-other-project")
    with pytest.raises(Exception, match=r"(?i)not found"):
        publisher.publish("events", b"x")
    with pytest.raises(Exception, match=r"(?i)not found"):
        publisher.check()


# -- LocalBus semantics -----------------------------------------------------------------------------


def test_every_subscription_gets_every_message() -> None:
    bus = LocalBus(max_attempts=3, retry_base_seconds=0)
    seen: dict[str, list[str]] = {"a": [], "b": []}
    bus.subscribe("t", "a", lambda m: seen["a"].append(m.message_id))
    bus.subscribe("t", "b", lambda m: seen["b"].append(m.message_id))
    ids = [bus.publish("t", b"1"), bus.publish("t", b"2")]
    bus.drain()
    assert seen == {"a": ids, "b": ids}


def test_failed_delivery_is_retried_until_it_succeeds_without_touching_other_subscriptions() -> None:
    # GIVEN a subscription that fails its first two deliveries and one that never fails
    bus = LocalBus(max_attempts=5, retry_base_seconds=0)
    attempts: list[int] = []
    healthy: list[int] = []

    def flaky(message: BusMessage) -> None:
        attempts.append(message.delivery_attempt)
        if message.delivery_attempt < 3:
            raise RuntimeError("transient")

    bus.subscribe("t", "flaky", flaky)
    bus.subscribe("t", "healthy", lambda m: healthy.append(m.delivery_attempt))
    bus.publish("t", b"x")
    bus.drain()
    # THEN the flaky one saw attempts 1, 2, 3 and the healthy one exactly one delivery
    assert attempts == [1, 2, 3]
    assert healthy == [1]
    assert not bus.dead_letters
    assert bus.pending() == 0


def test_retries_back_off_exponentially() -> None:
    # GIVEN a worker delivering with a 50 ms base backoff and a handler that always fails
    bus = LocalBus(max_attempts=4, retry_base_seconds=0.05)
    stamps: list[float] = []
    done = threading.Event()
    bus.subscribe("t", "failing", lambda m: (stamps.append(time.monotonic()), _raise()))
    bus.subscribe(dead_letter_topic("t"), "dlq", lambda m: done.set())
    bus.start()
    try:
        bus.publish("t", b"x")
        assert done.wait(10)
    finally:
        bus.stop()
    # THEN attempts are spaced at least 50, 100, 200 ms apart (lower bounds only: never flaky)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 4
    for gap, minimum in zip(gaps, [0.05, 0.1, 0.2], strict=True):
        assert gap >= minimum * 0.95


def test_a_subscription_keeps_its_own_retry_policy() -> None:
    # GIVEN a bus whose default is 9 attempts, and a subscription with a manifest-style policy of its
    # own: 3 attempts, backoff from 50 ms capped at 60 ms
    bus = LocalBus(max_attempts=9, retry_base_seconds=0)
    stamps: list[float] = []
    done = threading.Event()
    bus.subscribe(
        "t", "failing", lambda m: (stamps.append(time.monotonic()), _raise()), retry=RetryPolicy(3, 0.05, 0.06)
    )
    bus.subscribe(dead_letter_topic("t"), "dlq", lambda m: done.set())
    bus.start()
    try:
        bus.publish("t", b"x")
        assert done.wait(10)
    finally:
        bus.stop()
    # THEN it is dead-lettered after its own 3 attempts, spaced by its own backoff
    assert len(stamps) == 3
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    for gap, minimum in zip(gaps, [0.05, 0.06], strict=True):
        assert gap >= minimum * 0.95


def test_the_stack_applies_each_function_s_manifest_policy(stack: LocalStack) -> None:
    policies = {s.name: s.retry for subs in stack.bus._subscriptions.values() for s in subs}
    for spec in stack.manifest.pubsub_functions():
        assert isinstance(spec.trigger, PubSubTrigger)
        assert policies[spec.name] == spec.trigger.retry == RetryPolicy(100, 10, 600)


def _raise() -> None:
    raise RuntimeError("always")


def test_dead_letter_after_max_attempts() -> None:
    # GIVEN a handler that always fails and a subscriber on the dead-letter topic
    bus = LocalBus(max_attempts=3, retry_base_seconds=0)
    attempts: list[int] = []
    dead: list[BusMessage] = []
    bus.subscribe("events", "writer", lambda m: (attempts.append(m.delivery_attempt), _raise()))
    bus.subscribe(dead_letter_topic("events"), "dlq", dead.append)
    message_id = bus.publish("events", b"payload", {"tenant_id": "1"})
    bus.drain()
    # THEN it was tried exactly max_attempts times, then dead-lettered with its origin
    assert attempts == [1, 2, 3]
    assert len(dead) == 1 and len(bus.dead_letters) == 1
    letter = dead[0]
    assert letter.topic == "events-dead-letter"
    assert letter.data == b"payload"
    assert letter.attributes["tenant_id"] == "1"
    assert letter.attributes["source_topic"] == "events"
    assert letter.attributes["source_subscription"] == "writer"
    assert letter.attributes["source_message_id"] == message_id
    assert letter.attributes["error"] == "RuntimeError: always"


def test_stop_delivers_what_is_pending() -> None:
    bus = LocalBus(max_attempts=3, retry_base_seconds=0)
    seen: list[bytes] = []
    bus.subscribe("t", "s", lambda m: seen.append(m.data))
    bus.start()
    for n in range(50):
        bus.publish("t", str(n).encode())
    bus.stop()
    assert sorted(seen, key=int) == [str(n).encode() for n in range(50)]


def test_a_burst_wakes_as_many_workers_as_its_subscription_may_use() -> None:
    # GIVEN 8 workers, a subscription of concurrency 6 whose deliveries wait for each other, and 6
    # messages published at once: they only finish if 6 workers deliver at the same time
    bus = LocalBus(concurrency=8)
    barrier = threading.Barrier(6, timeout=10)
    done: list[bytes] = []
    bus.subscribe("t", "together", lambda m: (barrier.wait(), done.append(m.data)), concurrency=6)
    bus.start()
    try:
        for n in range(6):
            bus.publish("t", str(n).encode())
        deadline = time.monotonic() + 10
        while len(done) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        bus.stop()
    # THEN every delivery ran, none broke the barrier (a worker left asleep would have)
    assert sorted(done) == [str(n).encode() for n in range(6)]
    assert not bus.dead_letters


def test_a_delayed_retry_is_delivered_while_other_deliveries_keep_workers_busy() -> None:
    # GIVEN 2 workers, a delivery that fails once (retried 100 ms later), and a steady stream of
    # slow deliveries on another subscription that takes the woken worker every time
    bus = LocalBus(max_attempts=3, retry_base_seconds=0.1, concurrency=2)
    retried = threading.Event()
    attempts: list[float] = []

    def flaky(message: BusMessage) -> None:
        attempts.append(time.monotonic())
        if message.delivery_attempt == 1:
            raise RuntimeError("transient")
        retried.set()

    bus.subscribe("flaky", "flaky", flaky)
    bus.subscribe("busy", "busy", lambda m: time.sleep(0.05))
    bus.start()
    try:
        bus.publish("flaky", b"x")
        stop = time.monotonic() + 3
        while not retried.is_set() and time.monotonic() < stop:
            bus.publish("busy", b"y")
            time.sleep(0.02)
        # THEN the retry came when it was due, not when the stream stopped
        assert retried.is_set()
        assert attempts[1] - attempts[0] < 1.5
    finally:
        bus.stop(drain_timeout=30)


@pytest.mark.parametrize(
    "text",
    ["aGVsbG8=", b"aGVsbG8=", "", "aGVs bG8=", "aGVsbG8=\n", "aGVsbG8", "a===", "!!!!", "é", "/+/+", "_-_-"],
)
def test_message_data_decodes_exactly_as_the_standard_library_does(text: str | bytes) -> None:
    # Pub/Sub's strict base64 takes the fast decoder; anything else keeps base64.b64decode's answer
    def outcome(decode: Callable[[str | bytes], bytes]) -> object:
        try:
            return decode(text)
        except Exception as exc:  # the same exception type, whichever decoder decided
            return type(exc)

    assert outcome(decode_data) == outcome(base64.b64decode)


# -- delivery through the real functions-framework CloudEvent entry point ---------------------------


@pytest.fixture
def probe_stack(stack: LocalStack) -> LocalStack:
    """The local stack plus a Pub/Sub-triggered test function mounted the way the manifest's are."""
    stack.apps["bus_probe"] = functions_framework.create_app("bus_probe", str(PROBE_SOURCE), "cloudevent")
    stack.bus.subscribe("probe-topic", "bus_probe", stack._deliverer("bus_probe"))
    return stack


def probe_log(stack: LocalStack) -> list[BusMessage]:
    """What the probe received, by message then delivery attempt."""
    found = []
    for key in sorted(stack.runtime.store.list("bus_probe/")):
        document = stack.runtime.store.get(key)
        assert document is not None
        body = document.body
        found.append(
            BusMessage(
                body["topic"],
                base64.b64decode(body["data"]),
                body["attributes"],
                body["message_id"],
                delivery_attempt=body["delivery_attempt"],
            )
        )
    return found


def test_function_receives_the_pubsub_cloudevent(probe_stack: LocalStack) -> None:
    # WHEN a message is published and the bus delivers it
    message_id = probe_stack.bus.publish("probe-topic", b'{"k": "v"}', {"tenant_id": "3"})
    probe_stack.bus.drain()
    # THEN the function decoded exactly the published message from the Eventarc envelope
    [got] = probe_log(probe_stack)
    assert (got.topic, got.data, got.attributes, got.message_id) == (
        "probe-topic",
        b'{"k": "v"}',
        {"tenant_id": "3"},
        message_id,
    )
    assert got.delivery_attempt == 1


def test_function_error_is_a_nack_and_redelivered(probe_stack: LocalStack) -> None:
    probe_stack.bus.publish("probe-topic", b"{}", {"fail_before_attempt": "3"})
    probe_stack.bus.drain()
    assert [m.delivery_attempt for m in probe_log(probe_stack)] == [1, 2, 3]
    assert not probe_stack.bus.dead_letters


def test_function_exhausting_retries_is_dead_lettered(probe_stack: LocalStack) -> None:
    letters: list[BusMessage] = []
    probe_stack.bus.subscribe(dead_letter_topic("probe-topic"), "dlq", letters.append)
    probe_stack.bus.publish("probe-topic", b"{}", {"fail_before_attempt": "99"})
    probe_stack.bus.drain()
    assert len(probe_log(probe_stack)) == probe_stack.settings.bus_max_attempts
    assert len(probe_stack.bus.dead_letters) == 1
    [letter] = letters
    assert letter.attributes["source_subscription"] == "bus_probe"
    assert letter.attributes["error"].startswith("DeliveryFailed: bus_probe answered 500")


def test_permanent_error_is_acked_once(probe_stack: LocalStack) -> None:
    probe_stack.bus.publish("probe-topic", b"{}", {"permanent": "1"})
    probe_stack.bus.drain()
    assert len(probe_log(probe_stack)) == 1
    assert not probe_stack.bus.dead_letters


def test_an_eventarc_cloudevent_decodes_to_its_pubsub_message() -> None:
    # GIVEN a CloudEvent as Eventarc delivers a Pub/Sub message (a sample, not made by to_cloudevent)
    from cloudevents.http import from_http

    sample = load_fixture("cloudevents/pubsub-events")
    decoded = from_cloudevent(from_http(sample["headers"], orjson.dumps(sample["body"])))
    # THEN the topic comes from the source, the rest from the message
    assert (decoded.topic, decoded.data, decoded.attributes, decoded.message_id, decoded.delivery_attempt) == (
        "events",
        b'{"event_id": "e1"}',
        {"tenant_id": "7"},
        "m-1",
        3,
    )
    assert decoded.publish_time.isoformat() == "2026-11-23T10:00:00.123000+00:00"
    # AND re-encoding it gives the same envelope fields Eventarc sent
    headers, body = to_cloudevent(decoded, "p", "events--segops-event-writer")
    for name in ("ce-id", "ce-specversion", "ce-source", "ce-type"):
        assert headers[name] == sample["headers"][name]
    assert body["message"]["data"] == sample["body"]["message"]["data"]
    assert body["subscription"] == sample["body"]["subscription"]


def test_cloudevent_envelope_round_trip() -> None:
    # GIVEN a bus message with binary data
    message = BusMessage("events", b"\x00\xffdata", {"a": "b"}, "m-1", delivery_attempt=2)
    headers, body = to_cloudevent(message, PROJECT, "writer-events")
    # THEN the envelope is what Eventarc sends for Pub/Sub
    assert headers["ce-type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert headers["ce-source"] == f"//pubsub.googleapis.com/projects/{PROJECT}/topics/events"
    assert body["subscription"] == f"projects/{PROJECT}/subscriptions/writer-events"
    assert base64.b64decode(body["message"]["data"]) == b"\x00\xffdata"
    # AND a functions-framework CloudEvent built from it decodes to the same message
    from cloudevents.http import from_http

    event = from_http(headers, orjson.dumps(body))
    decoded = from_cloudevent(event)
    assert (decoded.topic, decoded.data, decoded.attributes, decoded.message_id, decoded.delivery_attempt) == (
        "events",
        b"\x00\xffdata",
        {"a": "b"},
        "m-1",
        2,
    )
