"""The Python SDK against an in-test ingestion server: batching, timer, retries, shutdown, bounds."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from segops_sdk import SegOpsClient, SegOpsClosedError, retry

from tests.sdk.conftest import Clients, IngestionServer, RecordedRequest, Reply

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def track_n(client: SegOpsClient, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        client.track(user_id=f"user-{n}", event_type="page_viewed", payload={"n": n})


def ok(request: RecordedRequest) -> Reply:
    return Reply(202, body={"queued": len(request.events), "skipped": 0})


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits the client asked for, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(retry, "wait", recorded.append)
    return recorded


# --- batching ------------------------------------------------------------------------------------


def test_sends_one_batch_of_20_as_soon_as_the_20th_event_is_tracked(
    clients: Clients, ingestion: IngestionServer
) -> None:
    # GIVEN the default flush_at (20) and a far-away timer
    client = clients(flush_interval=3600)
    # WHEN 19 events are tracked
    track_n(client, 19)
    # THEN they wait in the buffer
    assert client.queued == 19
    assert ingestion.requests == []
    # WHEN the 20th is tracked
    track_n(client, 1, start=19)
    # THEN exactly one request carries all 20, in order, in the documented shape
    ingestion.wait_for_requests(1)
    client.flush()
    assert len(ingestion.requests) == 1
    request = ingestion.requests[0]
    assert (request.method, request.path) == ("POST", "/api/ingestion/track/batch/")
    assert request.headers["Authorization"] == "ApiKey sk_test_0123456789"
    assert request.headers["Content-Type"] == "application/json"
    assert [e["payload"] for e in request.events] == [{"n": n} for n in range(20)]
    for event in request.events:
        assert sorted(event) == ["event_type", "message_id", "occurred_at", "payload", "user_id"]
        assert UUID4.match(event["message_id"])
    assert len({e["message_id"] for e in request.events}) == 20
    assert clients.errors == []


def test_never_sends_more_than_500_events_per_request(clients: Clients, ingestion: IngestionServer) -> None:
    client = clients(flush_at=10_000, flush_interval=3600)
    track_n(client, 1200)
    assert client.flush(timeout=30)
    assert [len(r.events) for r in ingestion.requests] == [500, 500, 200]
    assert [e["payload"]["n"] for e in ingestion.events] == list(range(1200))


def test_flushes_a_partial_buffer_once_the_interval_has_passed(clients: Clients, ingestion: IngestionServer) -> None:
    # GIVEN a short interval
    client = clients(flush_interval=0.3)
    # WHEN 3 events are tracked and nobody flushes
    started = time.monotonic()
    track_n(client, 3)
    # THEN they are sent together, not before the interval
    ingestion.wait_for_requests(1)
    assert time.monotonic() - started >= 0.3
    assert len(ingestion.requests[0].events) == 3


def test_stamps_occurred_at_and_message_id_at_call_time_and_snapshots_the_payload(
    clients: Clients, ingestion: IngestionServer
) -> None:
    client = clients()
    payload = {"path": "/pricing"}
    before = datetime.now(UTC)
    client.track(user_id="user-123", event_type="page_viewed", payload=payload)
    after = datetime.now(UTC)
    payload["path"] = "/mutated"
    client.flush()
    event = ingestion.events[0]
    assert event["payload"] == {"path": "/pricing"}
    assert event["occurred_at"].endswith("Z")
    stamped = datetime.fromisoformat(event["occurred_at"])
    assert before - timedelta(milliseconds=1) <= stamped <= after


def test_passes_explicit_timestamps_and_message_ids_through(clients: Clients, ingestion: IngestionServer) -> None:
    client = clients()
    plus_two = timezone(timedelta(hours=2))
    client.track(user_id="u", event_type="a", occurred_at=datetime(2026, 4, 25, 16, 32, tzinfo=plus_two))
    client.track(user_id="u", event_type="b", occurred_at=datetime(2026, 4, 25, 14, 32), message_id="order-456")
    client.track(user_id="u", event_type="c", occurred_at="2026-04-25T14:32:00Z")
    client.flush()
    assert [e["occurred_at"] for e in ingestion.events] == [
        "2026-04-25T14:32:00.000Z",
        "2026-04-25T14:32:00.000",
        "2026-04-25T14:32:00Z",
    ]
    assert ingestion.events[1]["message_id"] == "order-456"
    assert "payload" not in ingestion.events[0]


def test_identify_sends_context_identified_with_the_traits(clients: Clients, ingestion: IngestionServer) -> None:
    client = clients()
    client.identify(user_id="user-123", traits={"email": "jane@example.com", "plan": "starter"})
    client.flush()
    assert [(e["event_type"], e["payload"]) for e in ingestion.events] == [
        ("context_identified", {"email": "jane@example.com", "plan": "starter"})
    ]


def test_rejects_malformed_calls_at_the_call_site(clients: Clients, ingestion: IngestionServer) -> None:
    client = clients()
    with pytest.raises(TypeError):
        client.track(user_id="", event_type="x")
    with pytest.raises(TypeError):
        client.track(user_id="u", event_type="x", payload=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Out of range float"):
        client.track(user_id="u", event_type="x", payload={"v": float("nan")})
    with pytest.raises(TypeError):
        SegOpsClient("ftp://example.com", "sk_x")
    with pytest.raises(ValueError, match="flush_at"):
        SegOpsClient(ingestion.url, "sk_x", flush_at=0)
    assert client.queued == 0


# --- flush ---------------------------------------------------------------------------------------


def test_flush_settles_when_the_api_answered_and_only_for_events_queued_before_it(
    clients: Clients, ingestion: IngestionServer
) -> None:
    # GIVEN a server that holds its answer
    release = threading.Event()

    def held(request: RecordedRequest, _index: int) -> Reply:
        release.wait(10)
        return ok(request)

    ingestion.responder = held
    client = clients()
    track_n(client, 2)
    results: list[bool] = []
    flusher = threading.Thread(target=lambda: results.append(client.flush()))
    flusher.start()
    ingestion.wait_for_requests(1)
    # WHEN another event is tracked while the request is in flight
    track_n(client, 1, start=2)
    # THEN flush has not returned before the answer
    flusher.join(0.1)
    assert flusher.is_alive()
    assert results == []
    release.set()
    flusher.join(10)
    assert results == [True]
    # AND it did not wait for (or send) the later event
    assert len(ingestion.requests) == 1
    assert client.queued == 1


def test_flush_returns_at_once_when_nothing_is_buffered(clients: Clients, ingestion: IngestionServer) -> None:
    assert clients().flush(timeout=0) is True
    assert ingestion.requests == []


# --- retries -------------------------------------------------------------------------------------


def test_retries_503_with_exponential_backoff_keeping_message_ids(
    clients: Clients, ingestion: IngestionServer, waits: list[float]
) -> None:
    ingestion.responder = lambda r, i: Reply(503) if i < 2 else ok(r)
    client = clients()
    track_n(client, 2)
    client.flush()
    assert len(ingestion.requests) == 3
    # equal jitter: attempt n waits between half and all of 0.5 s * 2^n
    assert len(waits) == 2
    assert 0.25 <= waits[0] <= 0.5
    assert 0.5 <= waits[1] <= 1.0
    assert {r.raw_body for r in ingestion.requests} == {ingestion.requests[0].raw_body}
    assert clients.errors == []


def test_honours_retry_after_on_429(clients: Clients, ingestion: IngestionServer, waits: list[float]) -> None:
    ingestion.responder = lambda r, i: Reply(429, headers={"Retry-After": "7"}) if i == 0 else ok(r)
    client = clients()
    track_n(client, 1)
    client.flush()
    assert waits == [7.0]
    assert ingestion.requests[1].events[0]["message_id"] == ingestion.requests[0].events[0]["message_id"]


def test_honours_retry_after_on_503_and_reports_the_last_answers_code(
    clients: Clients, ingestion: IngestionServer, waits: list[float]
) -> None:
    down = {"error": {"code": "service_unavailable", "message": "event bus unavailable", "details": {"d": 1}}}
    ingestion.responder = lambda r, i: Reply(503, headers={"Retry-After": "3"}, body=down)
    client = clients(max_retries=2)
    track_n(client, 2)
    client.flush()
    assert waits == [3.0, 3.0]
    [error] = clients.errors
    assert (error.kind, error.status, error.code, error.details, error.event_count) == (
        "retries_exhausted",
        503,
        "service_unavailable",
        {"d": 1},
        2,
    )


QUOTA_EXCEEDED = {
    "error": {
        "code": "quota_exceeded",
        "message": "the monthly quota of 5 events is used up; it renews on 2026-07-01 (UTC)",
        "details": {"limit": 5, "used": 5, "requested": 2, "retry_after": 2423110},
    }
}


def test_a_used_up_quota_is_reported_at_once_and_the_batch_dropped(
    clients: Clients, ingestion: IngestionServer
) -> None:
    # GIVEN an API whose answer is 429 quota_exceeded until the month ends (Retry-After: 4 weeks)
    ingestion.responder = lambda r, i: Reply(429, headers={"Retry-After": "2423110"}, body=QUOTA_EXCEEDED)
    client = clients(max_retries=5)
    track_n(client, 2)
    # WHEN flushed (nothing is mocked: a retry would sleep 60 s)
    started = time.monotonic()
    assert client.flush(timeout=10) is True
    # THEN flush returned promptly after one request, and the loss was reported once, with the code
    assert time.monotonic() - started < 5
    assert len(ingestion.requests) == 1
    [error] = clients.errors
    assert (error.kind, error.status, error.code, error.event_count) == ("rejected", 429, "quota_exceeded", 2)
    assert error.details == QUOTA_EXCEEDED["error"]["details"]
    # AND the batch was dropped: later events go out alone
    track_n(client, 1, start=2)
    assert client.flush(timeout=10) is True
    assert [len(r.events) for r in ingestion.requests] == [2, 1]


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [(429, "rate_limited", "61"), (503, "service_unavailable", "86400"), (503, None, "Fri, 01 Jan 2100 00:00:00 GMT")],
)
def test_a_429_or_503_asking_to_wait_beyond_the_cap_is_rejected_at_once(
    clients: Clients, ingestion: IngestionServer, waits: list[float], status: int, code: str | None, retry_after: str
) -> None:
    body = None if code is None else {"error": {"code": code, "message": "later"}}
    ingestion.responder = lambda r, i: Reply(status, headers={"Retry-After": retry_after}, body=body)
    client = clients()
    track_n(client, 3)
    assert client.flush(timeout=10) is True
    assert len(ingestion.requests) == 1
    assert waits == []
    [error] = clients.errors
    assert (error.kind, error.status, error.code, error.event_count) == ("rejected", status, code, 3)
    assert "beyond the SDK's 60 s limit" in error.message


def test_a_rate_limited_429_with_a_short_retry_after_is_still_retried(
    clients: Clients, ingestion: IngestionServer, waits: list[float]
) -> None:
    limited = {"error": {"code": "rate_limited", "message": "too many requests"}}
    ingestion.responder = lambda r, i: Reply(429, headers={"Retry-After": "1"}, body=limited) if i < 2 else ok(r)
    client = clients()
    track_n(client, 2)
    assert client.flush(timeout=10) is True
    assert waits == [1.0, 1.0]
    assert len(ingestion.requests) == 3
    assert clients.errors == []


def test_a_retry_after_of_exactly_the_cap_is_waited_and_a_longer_one_on_a_500_is_capped(
    clients: Clients, ingestion: IngestionServer, waits: list[float]
) -> None:
    answers = [Reply(429, headers={"Retry-After": "60"}), Reply(500, headers={"Retry-After": "86400"})]
    ingestion.responder = lambda r, i: answers[i] if i < len(answers) else ok(r)
    client = clients()
    track_n(client, 1)
    assert client.flush(timeout=10) is True
    assert waits == [retry.RETRY_AFTER_MAX, retry.RETRY_AFTER_MAX]
    assert clients.errors == []


def test_retries_a_dropped_connection(clients: Clients, ingestion: IngestionServer, waits: list[float]) -> None:
    ingestion.responder = lambda r, i: Reply(drop_connection=True) if i == 0 else ok(r)
    client = clients()
    track_n(client, 1)
    client.flush()
    assert len(ingestion.requests) == 2
    assert len(waits) == 1
    assert clients.errors == []


def test_never_retries_a_400_and_reports_it(clients: Clients, ingestion: IngestionServer) -> None:
    ingestion.responder = lambda r, i: Reply(
        400,
        body={
            "error": {"code": "validation_failed", "message": "events: invalid", "details": [{"pointer": "/events"}]}
        },
    )
    client = clients()
    track_n(client, 3)
    client.flush()
    assert len(ingestion.requests) == 1
    [error] = clients.errors
    assert (error.kind, error.status, error.code, error.event_count) == ("rejected", 400, "validation_failed", 3)
    assert error.details == [{"pointer": "/events"}]


def test_never_retries_a_401(clients: Clients, ingestion: IngestionServer) -> None:
    ingestion.responder = lambda r, i: Reply(401, body={"error": {"code": "unauthorized", "message": "bad key"}})
    client = clients()
    track_n(client, 1)
    client.flush()
    assert len(ingestion.requests) == 1
    assert [e.status for e in clients.errors] == [401]


def test_splits_a_batch_the_api_finds_too_large(clients: Clients, ingestion: IngestionServer) -> None:
    ingestion.responder = lambda r, i: (
        Reply(413, body={"error": {"code": "payload_too_large"}}) if len(r.events) > 3 else ok(r)
    )
    client = clients(flush_at=100)
    track_n(client, 10)
    client.flush()
    accepted = [e["payload"]["n"] for r in ingestion.requests if len(r.events) <= 3 for e in r.events]
    assert accepted == list(range(10))
    assert clients.errors == []


def test_gives_up_after_max_retries(clients: Clients, ingestion: IngestionServer, waits: list[float]) -> None:
    ingestion.responder = lambda r, i: Reply(500)
    client = clients(max_retries=2)
    track_n(client, 4)
    client.flush()
    assert len(ingestion.requests) == 3
    [error] = clients.errors
    assert (error.kind, error.event_count, error.status) == ("retries_exhausted", 4, 500)


def test_reports_events_the_api_skipped(clients: Clients, ingestion: IngestionServer) -> None:
    ingestion.responder = lambda r, i: Reply(202, body={"queued": len(r.events) - 1, "skipped": 1})
    client = clients()
    track_n(client, 2)
    client.flush()
    assert [(e.kind, e.event_count) for e in clients.errors] == [("skipped", 1)]


def test_a_raising_on_error_does_not_stop_delivery(clients: Clients, ingestion: IngestionServer) -> None:
    def broken(_error: object) -> None:
        raise RuntimeError("callback bug")

    ingestion.responder = lambda r, i: Reply(400) if i == 0 else ok(r)
    client = clients(on_error=broken)
    track_n(client, 1)
    client.flush()
    track_n(client, 1, start=1)
    client.flush()
    assert len(ingestion.requests) == 2


# --- shutdown ------------------------------------------------------------------------------------


def test_shutdown_flushes_waits_for_retries_then_refuses_calls(
    clients: Clients, ingestion: IngestionServer, waits: list[float]
) -> None:
    ingestion.responder = lambda r, i: Reply(503) if i == 0 else ok(r)
    client = clients(flush_interval=3600)
    track_n(client, 3)
    assert client.shutdown(timeout=30) is True
    assert [len(r.events) for r in ingestion.requests] == [3, 3]
    assert client.shutdown() is True
    with pytest.raises(SegOpsClosedError):
        track_n(client, 1)
    with pytest.raises(SegOpsClosedError):
        client.identify(user_id="u", traits={})
    with pytest.raises(SegOpsClosedError):
        client.flush()


def test_a_script_that_just_ends_still_delivers_its_events(ingestion: IngestionServer) -> None:
    # GIVEN a script that tracks two events with an hour-long interval and then simply ends
    script = (
        "from segops_sdk import SegOpsClient\n"
        f"client = SegOpsClient({ingestion.url!r}, 'sk_test', flush_interval=3600)\n"
        "client.track(user_id='user-1', event_type='script_ran')\n"
        "client.identify(user_id='user-1', traits={'plan': 'starter'})\n"
    )
    # WHEN it runs (the sender thread must neither block the exit nor lose the buffer)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=Path.cwd(), check=False)
    # THEN it exits cleanly and the atexit flush delivered both events
    assert done.returncode == 0, done.stderr
    assert [e["event_type"] for e in ingestion.events] == ["script_ran", "context_identified"]


# --- bounded queue -------------------------------------------------------------------------------


def test_drops_the_oldest_events_with_a_counted_warning(clients: Clients, ingestion: IngestionServer) -> None:
    # GIVEN a buffer of 5
    client = clients(max_queue_size=5, flush_at=100, flush_interval=3600)
    # WHEN 8 events are tracked
    track_n(client, 8)
    # THEN the 3 oldest are gone, and the next send reports them once, with their count
    assert (client.queued, client.dropped) == (5, 3)
    client.flush()
    assert [(e.kind, e.event_count) for e in clients.errors] == [("queue_overflow", 3)]
    assert "dropped the 3 oldest event(s), 3 in total" in clients.errors[0].message
    assert [e["payload"]["n"] for e in ingestion.events] == [3, 4, 5, 6, 7]
    # WHEN another burst overflows
    track_n(client, 7, start=8)
    client.flush()
    # THEN a second warning counts it and the total grows
    assert [(e.kind, e.event_count) for e in clients.errors][1] == ("queue_overflow", 2)
    assert client.dropped == 5


# --- fork ----------------------------------------------------------------------------------------


def wait_for_child(pid: int, timeout: float = 30.0) -> int:
    """The child's exit code; a child still running after `timeout` seconds is killed and fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child was still running after {timeout} s (deadlocked?)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_sends_its_own_events_and_not_the_parents(clients: Clients, ingestion: IngestionServer) -> None:
    # GIVEN a client with a batch in flight (the server holds its answer) and one more event buffered
    release = threading.Event()

    def held(request: RecordedRequest, index: int) -> Reply:
        if index == 0:
            release.wait(10)
        return ok(request)

    ingestion.responder = held
    client = clients(flush_interval=3600)
    client.track(user_id="parent", event_type="in_flight_at_fork")
    flusher = threading.Thread(target=client.flush)
    flusher.start()
    ingestion.wait_for_requests(1)
    client.track(user_id="parent", event_type="buffered_at_fork")
    # WHEN the process forks (as `gunicorn --preload` or multiprocessing do) and the child tracks and flushes
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            client.track(user_id="child", event_type="tracked_in_child")
            code = 0 if client.flush(timeout=10) and client.queued == 0 else 2
        finally:
            os._exit(code)
    # THEN the child's flush returned True: it started a thread of its own and did not wait for the
    # parent's in-flight batch
    assert wait_for_child(pid) == 0
    assert [e["event_type"] for e in ingestion.events] == ["in_flight_at_fork", "tracked_in_child"]
    # AND the parent sends what it had buffered; every event arrived exactly once
    release.set()
    flusher.join(10)
    assert client.flush(timeout=10) is True
    assert sorted(e["event_type"] for e in ingestion.events) == [
        "buffered_at_fork",
        "in_flight_at_fork",
        "tracked_in_child",
    ]
    assert clients.errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_child_forked_while_another_thread_holds_the_clients_lock_can_still_track(
    clients: Clients, ingestion: IngestionServer
) -> None:
    # GIVEN another thread holding the client's lock at the moment of the fork (white box: that
    # moment is otherwise too short to hit on purpose)
    client = clients(flush_interval=3600)
    client.track(user_id="parent", event_type="before_fork")
    assert client.flush(timeout=10)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with client._sender._cond:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                client.track(user_id="child", event_type="tracked_in_child")
                code = 0 if client.flush(timeout=10) else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        holder.join(10)
    # THEN the child neither deadlocked nor lost its event
    assert wait_for_child(pid) == 0
    assert [e["event_type"] for e in ingestion.events] == ["before_fork", "tracked_in_child"]


# --- lifetime ------------------------------------------------------------------------------------


def test_clients_dropped_without_shutdown_are_collected_and_their_threads_end(ingestion: IngestionServer) -> None:
    # GIVEN clients made and dropped without shutdown() (say, one per request in a web handler):
    # some flushed, some with events still buffered
    before = set(threading.enumerate())
    refs: list[weakref.ref[SegOpsClient]] = []
    for n in range(6):
        client = SegOpsClient(ingestion.url, "sk_test", flush_interval=3600)
        client.track(user_id=f"user-{n}", event_type="from_a_dropped_client", payload={"n": n})
        if n % 2 == 0:
            assert client.flush(timeout=10)
        refs.append(weakref.ref(client))
        del client
    # WHEN they are garbage-collected
    gc.collect()
    # THEN nothing kept them alive (neither the exit hook, the fork hook nor their threads)
    assert [ref() for ref in refs] == [None] * 6
    # AND their threads sent what was still buffered, then ended
    senders = [t for t in set(threading.enumerate()) - before if t.name == "segops-sdk-sender"]
    for thread in senders:
        thread.join(10)
    assert [t for t in senders if t.is_alive()] == []
    assert sorted(e["payload"]["n"] for e in ingestion.events) == list(range(6))


def test_a_dropped_clients_events_are_still_delivered_at_exit(ingestion: IngestionServer) -> None:
    script = (
        "from segops_sdk import SegOpsClient\n"
        "def handler():\n"
        f"    client = SegOpsClient({ingestion.url!r}, 'sk_test', flush_interval=3600)\n"
        "    client.track(user_id='user-1', event_type='dropped_client_ran')\n"
        "handler()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, cwd=Path.cwd(), check=False)
    assert done.returncode == 0, done.stderr
    assert [e["event_type"] for e in ingestion.events] == ["dropped_client_ran"]
