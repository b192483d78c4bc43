"""Freshness: from a `track` call to the membership lookup showing the new segment.

The stack as `make dev` serves it (HTTP on loopback, the local bus delivering on its worker thread,
event writer, debounced `UsersChanged` → delta compute → publish → cache invalidation), while other
users' events arrive at a steady 1,000 events/s (ten 100-event batches a second). Each probe tracks
one event of a new user that puts them in an active segment, then polls the lookup every 20 ms
until the segment appears; its latency is the time from sending the track to that answer.
Target: p95 ≤ 5 s.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr
from segops.config import Settings
from segops.localstack import LocalStack
from segops.warehouse import chdb_backend
from werkzeug.serving import make_server

from benchmarks.harness import Figure, percentile
from tests.support.api import Api

BACKGROUND_RATE = 1000  # events/s from other users
BACKGROUND_BATCH = 100
PROBE_TIMEOUT = 30.0
PROBED = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "probe_fired", "operator": "gte", "value": 1}],
}


class _Client:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"ApiKey {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=None if body is None else orjson.dumps(body), headers=self.headers)
            response = connection.getresponse()
            raw = response.read()
            return response.status, orjson.loads(raw) if raw else None
        finally:
            connection.close()


def _background(client: _Client, stop: threading.Event, sent: list[int]) -> None:
    """Batches of other users' page views, paced to BACKGROUND_RATE events/s."""
    interval = BACKGROUND_BATCH / BACKGROUND_RATE
    due = time.perf_counter()
    n = 0
    while not stop.is_set():
        now = datetime.now(UTC).isoformat()
        events = [
            {"user_id": f"visitor-{(n + i) % 50_000}", "event_type": "page_viewed", "occurred_at": now}
            for i in range(BACKGROUND_BATCH)
        ]
        status, _ = client.call("POST", "/api/ingestion/track/batch/", {"events": events})
        if status == 202:
            sent[0] += BACKGROUND_BATCH
        n += BACKGROUND_BATCH
        due += interval
        time.sleep(max(0.0, due - time.perf_counter()))


def _probe(client: _Client, segment_id: int, user_id: str) -> float:
    started = time.perf_counter()
    status, _ = client.call("POST", "/api/ingestion/track/", {"user_id": user_id, "event_type": "probe_fired"})
    assert status == 202, status
    while time.perf_counter() - started < PROBE_TIMEOUT:
        status, body = client.call("GET", f"/api/segments/membership/?user_id={user_id}")
        if status == 200 and segment_id in body["segment_ids"]:
            return time.perf_counter() - started
        time.sleep(0.02)
    return PROBE_TIMEOUT


def run(scale: float) -> list[Figure]:
    probes = max(5, int(100 * scale))
    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-freshness-"))
    # chDB serves one data directory per process: join the one another benchmark opened, if any.
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    settings = Settings(
        environment="test",
        data_dir=workdir,
        chdb_path=opened or workdir / "chdb",
        clickhouse_database=f"bench_freshness_{uuid.uuid4().hex[:8]}",
        jwt_secret=SecretStr("bench-" + "x" * 40),
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )
    stack = LocalStack(settings)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, stack.wsgi, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    stop = threading.Event()
    try:
        account = Api(stack).signup(slug="fresh")
        client = _Client(server.server_port, account.api_key)
        stack.start_background()
        status, created = client.call(
            "POST", "/api/segments/", {"name": "Probed", "segment_type": "rule", "active": True, "definition": PROBED}
        )
        assert status == 201, created
        segment_id = int(created["id"])
        sent = [0]
        load = threading.Thread(target=_background, args=(client, stop, sent), daemon=True)
        started = time.perf_counter()
        load.start()
        time.sleep(2.0)  # the load reaches its steady state first
        latencies = []
        for i in range(probes):
            latencies.append(_probe(client, segment_id, f"probe-{i}"))
            time.sleep(0.5)
        stop.set()
        load.join()
        rate = sent[0] / (time.perf_counter() - started)
        extra = {"probes": probes, "background_events_per_s": round(rate), "timeouts": latencies.count(PROBE_TIMEOUT)}
        stack.stop()  # deliveries in flight finish, and the usage counts are written, before their database goes
        stack.runtime.warehouse.command(f"DROP DATABASE `{settings.clickhouse_database}`")
        return [
            Figure("freshness p50: track → lookup shows the segment", percentile(latencies, 50), "s", extra=extra),
            Figure(
                "freshness p95: track → lookup shows the segment",
                percentile(latencies, 95),
                "s",
                target="<= 5 s at 1,000 events/s from other users",
                extra=extra,
            ),
        ]
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
