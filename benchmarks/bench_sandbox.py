"""Sandbox figures (#13 item 3): publish p50/p99 with 100 active segments and a user with 10k events,
against the same-run primary-key read of that user's events, and where an evaluation's time goes.
The control plane's share (#13, #18): store requests and time per sandbox call on the local store and
on the GCS JSON API (fake-gcs-server), against listing and loading every segment document, the read
the active-segment index replaced.

Data is generated deterministically (seeded); the sandbox user has 10k events and the tenant 100
active segments of every condition type whatever the scale, which sets only how many other users
share the table (20,000 x scale, 5 events each).
"""

from __future__ import annotations

import gc
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from segops.dsl import parse_definition
from segops.dsl.evaluator import UserHistory, read_event_types
from segops.localstack import LocalStack
from segops.runtime import Runtime
from segops.sandbox.service import SimulatedEvent, simulate, stored_history
from segops.segments import service as segments
from segops.segments.active import active_segments
from segops.segments.models import Segment
from segops.store import keys
from segops.store.gcs import GcsStore
from segops.warehouse import TenantWarehouse

from benchmarks.bench_segments import bench_stack, signup
from benchmarks.harness import Figure, peak_rss_mb, percentile, ratio_figure
from tests.support.servers import start_fake_gcs
from tests.support.stores import CountingStore

SEED = 20260425
EVENT_TYPES = ["page_viewed", "order_placed", "product_viewed", "cart_updated", "context_identified", "email_opened"]
COLUMNS = ("tenant_id", "event_id", "message_id", "user_id", "event_type", "occurred_at", "received_at", "payload")
SANDBOX_USER = "sandbox-user"
SANDBOX_EVENTS = 10_000
SANDBOX_SEGMENTS = 100
SANDBOX_REQUESTS = 200
CONTROL_PLANE_CALLS = 30


def payload(rng: random.Random, event_type: str) -> dict[str, Any]:
    if event_type == "context_identified":
        return {"plan": rng.choice(["free", "starter", "pro"]), "country": rng.choice(["DE", "FR", "US"])}
    body: dict[str, Any] = {"path": f"/p/{rng.randrange(50)}", "currency": "EUR"}
    if event_type == "order_placed":
        body["total"] = round(rng.uniform(5, 400), 2)
    return body


def user_events(rng: random.Random, tenant_id: int, user_id: str, count: int, now: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for _ in range(count):
        event_type = rng.choices(EVENT_TYPES, weights=[40, 8, 25, 15, 2, 10])[0]
        at = now - timedelta(seconds=rng.randrange(90 * 86_400))
        rows.append(
            (tenant_id, str(uuid.UUID(int=rng.getrandbits(128))), "", user_id, event_type, at, at,
             orjson.dumps(payload(rng, event_type)).decode())
        )  # fmt: skip
    return rows


def definition(rng: random.Random) -> dict[str, Any]:
    """A varied definition: every condition type, windows, where-filters and nested groups."""
    event_type = rng.choice([t for t in EVENT_TYPES if t != "context_identified"])
    op = rng.choice(["gte", "gt", "lt", "lte"])
    property_op = rng.choice(["eq", "neq", "in"])
    kinds: list[dict[str, Any]] = [
        {"type": "event_count", "event_type": event_type, "operator": op, "value": rng.randrange(1, 3000)},
        {"type": "event_count", "event_type": event_type, "operator": "gte", "value": rng.randrange(1, 50),
         "window_days": rng.choice([1, 7, 30]), "where": [{"property": "path", "operator": "eq", "value": "/p/3"}]},
        {"type": "monetary", "event_type": "order_placed", "property": "total",
         "metric": rng.choice(["sum", "avg", "max", "min", "count"]), "operator": op,
         "value": rng.randrange(10, 50_000)},
        {"type": "recency", "event_type": event_type, "operator": op, "window_days": rng.choice([0.5, 3, 14, 60])},
        {"type": "user_property", "property": "plan", "operator": property_op,
         "value": ["pro", "starter"] if property_op == "in" else "pro"},
    ]  # fmt: skip
    first, second = rng.sample(kinds, 2)
    return {"logic": rng.choice(["AND", "OR"]), "conditions": [first, {"logic": "OR", "conditions": [second]}]}


def timed(fn: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def sandbox_figures(stack: LocalStack, scale: float) -> list[Figure]:
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    tenant_id, bearer = signup(stack)
    runtime = stack.runtime
    warehouse = runtime.warehouse
    warehouse.insert("events", COLUMNS, user_events(rng, tenant_id, SANDBOX_USER, SANDBOX_EVENTS, now))
    others = max(1, int(20_000 * scale))
    for start in range(0, others, 2_000):
        rows = [
            r for u in range(start, min(others, start + 2_000)) for r in user_events(rng, tenant_id, f"u{u}", 5, now)
        ]
        warehouse.insert("events", COLUMNS, rows)
    for index in range(SANDBOX_SEGMENTS):
        made = segments.create_segment(
            runtime,
            tenant_id,
            name=f"segment {index}",
            segment_type="rule",
            description="",
            active=True,
            created_by=None,
        )
        segments.update_segment(runtime, tenant_id, made.id, {}, definition=definition(rng), actor=None)

    client = stack.client()
    bodies: list[dict[str, Any]] = [
        {"user_id": SANDBOX_USER, "event_type": "order_placed", "payload": {"total": rng.randrange(1, 900)}}
        for _ in range(SANDBOX_REQUESTS)
    ]
    for body in bodies[:10]:  # warm caches and code paths
        assert client.post("/api/explorer/sandbox/publish/", json=body, headers=bearer).status_code == 200
    http: list[float] = []
    for body in bodies:
        started = time.perf_counter()
        response = client.post("/api/explorer/sandbox/publish/", json=body, headers=bearer)
        http.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)
    direct: list[float] = []
    cpu: list[float] = []  # this process's CPU time, chDB's threads included: what load on the machine cannot inflate
    for body in bodies[:100]:
        started, started_cpu = time.perf_counter(), time.process_time()
        simulate(runtime, tenant_id, SimulatedEvent(body["user_id"], body["event_type"], None, body["payload"]))
        direct.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)

    # Where an evaluation goes, step by step (the steps `simulate` takes, each timed alone).
    wh = TenantWarehouse(warehouse, tenant_id)
    active = active_segments(runtime, tenant_id)
    parsed = [(s.id, parse_definition(s.definition)) for s in active if s.definition is not None]
    types = read_event_types(definition for _, definition in parsed)  # the payloads `simulate` reads
    read = timed(lambda: stored_history(wh, SANDBOX_USER, now, types), SANDBOX_REQUESTS)
    # The same rows read plainly (every column decoded by the client): what the grouped read saves.
    plain = timed(
        lambda: wh.query(
            "SELECT event_type, occurred_at, received_at, payload FROM events WHERE tenant_id = {tenant_id:UInt64} "
            "AND user_id = {u:String} AND occurred_at <= {now:DateTime64(3, 'UTC')}",
            {"u": SANDBOX_USER, "now": now},
        ),
        20,
    )
    definitions = timed(
        lambda: [(s.id, parse_definition(s.definition)) for s in active_segments(runtime, tenant_id) if s.definition],
        100,
    )
    history = stored_history(wh, SANDBOX_USER, now, types)
    payload_text = orjson.dumps({"total": 250}).decode()

    def evaluate() -> None:
        real = UserHistory(history, now)
        real.members(parsed)
        real.with_event("order_placed", now, now, payload_text).members(parsed)

    evaluated = timed(evaluate, 100)
    read_p99 = percentile(read, 99) * 1000
    p50 = {name: percentile(samples, 50) * 1000 for name, samples in
           {"read": read, "plain": plain, "definitions": definitions, "evaluate": evaluated}.items()}  # fmt: skip
    return [
        ratio_figure(
            "sandbox publish p99 (HTTP, 10k events, 100 segments)",
            percentile(http, 99) * 1000,
            "ms",
            "primary-key read of the user's events p99",
            read_p99,
            "p99 <= 50 ms",
            p50_ms=percentile(http, 50) * 1000,
            requests=len(http),
        ),
        ratio_figure(
            "sandbox evaluation p99 (service)",
            percentile(direct, 99) * 1000,
            "ms",
            "primary-key read of the user's events p99",
            read_p99,
            p50_ms=percentile(direct, 50) * 1000,
            cpu_p50_ms=percentile(cpu, 50) * 1000,
            cpu_p99_ms=percentile(cpu, 99) * 1000,
        ),
        ratio_figure(
            "sandbox step: primary-key read of 10k events p50 (grouped, ms timestamps)",
            p50["read"],
            "ms",
            "the same rows read plainly (DateTime64 decoded) p50",
            p50["plain"],
        ),
        ratio_figure(
            "sandbox step: index both histories + evaluate 100 segments p50",
            p50["evaluate"],
            "ms",
            "primary-key read p50",
            p50["read"],
        ),
        ratio_figure(
            "sandbox step: active segments + parse 100 definitions p50",
            p50["definitions"],
            "ms",
            "primary-key read p50",
            p50["read"],
        ),
        *control_plane_figures(runtime, tenant_id, "local store"),
        *gcs_figures(runtime, tenant_id),
        Figure("sandbox peak RSS", peak_rss_mb(), "MB"),
    ]


def listed_and_loaded(runtime: Runtime, tenant_id: int) -> list[Segment]:
    """The active set as read before the index: every segment document listed and loaded."""
    listed = runtime.documents.list(keys.segments_prefix(tenant_id), Segment)
    return sorted((s for s in listed if s.active), key=lambda s: s.id)


def control_plane_figures(runtime: Runtime, tenant_id: int, where: str) -> list[Figure]:
    """Store requests and wall time of one sandbox service call, and of its active-set read alone."""
    counting = CountingStore(runtime.store)
    counted = replace(runtime, store=counting)
    event = SimulatedEvent(SANDBOX_USER, "order_placed", None, {"total": 250})
    simulate(counted, tenant_id, event)
    per_call = counting.total()
    counting.calls.clear()
    listed = listed_and_loaded(counted, tenant_id)
    assert [s.id for s in listed] == [s.id for s in active_segments(runtime, tenant_id)]
    per_listing = counting.total()
    index = timed(lambda: active_segments(runtime, tenant_id), CONTROL_PLANE_CALLS)
    listing = timed(lambda: listed_and_loaded(runtime, tenant_id), CONTROL_PLANE_CALLS)
    calls = timed(lambda: simulate(runtime, tenant_id, event), CONTROL_PLANE_CALLS)
    return [
        ratio_figure(
            f"sandbox call store requests ({where}, {len(listed)} active segments)",
            per_call,
            "requests",
            "listing and loading every segment document",
            per_listing,
        ),
        ratio_figure(
            f"sandbox step: active set read p50 ({where})",
            percentile(index, 50) * 1000,
            "ms",
            "listing and loading every segment document p50",
            percentile(listing, 50) * 1000,
            p99_ms=percentile(index, 99) * 1000,
        ),
        Figure(
            f"sandbox evaluation p50 (service, {where})",
            percentile(calls, 50) * 1000,
            "ms",
            extra={"p99_ms": percentile(calls, 99) * 1000, "calls": len(calls)},
        ),
    ]


def gcs_figures(runtime: Runtime, tenant_id: int) -> list[Figure]:
    """The same figures with the tenant's control-plane documents copied onto fake-gcs-server."""
    with fake_gcs_store() as gcs:
        prefix = keys.tenant_key(tenant_id).rsplit("/", 1)[0] + "/"
        for key in runtime.store.list(prefix):
            doc = runtime.store.get(key)
            if doc is not None:
                gcs.put(key, doc.body)
        return control_plane_figures(replace(runtime, store=gcs), tenant_id, "fake-gcs-server")


@contextmanager
def fake_gcs_store() -> Iterator[GcsStore]:
    url, process = start_fake_gcs()
    try:
        client = storage.Client(
            project="segops-bench",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": url},
        )
        client.create_bucket("segops-bench")
        yield GcsStore(client, "segops-bench")
    finally:
        process.terminate()
        process.wait(timeout=10)


def run(scale: float) -> list[Figure]:
    with bench_stack() as stack:
        # The local stack imports every function, event_writer's raised collector thresholds
        # included; the sandbox function's own process runs at CPython's defaults, so measure there.
        raised = gc.get_threshold()
        gc.set_threshold(700, 10, 10)
        try:
            return sandbox_figures(stack, scale)
        finally:
            gc.set_threshold(*raised)
