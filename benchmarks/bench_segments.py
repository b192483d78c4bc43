"""Segments API figures: sandbox p99, member export vs raw `FORMAT Parquet`, preview vs full compute.

Data is generated deterministically (seeded) into a throwaway stack; the sandbox user has 10k events
and the tenant 100 active segments of every condition type, whatever the scale.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from segops.config import Settings
from segops.dsl import compile_segments, parse_definition
from segops.localstack import LocalStack
from segops.membership.lookup import active_segments
from segops.sandbox.service import _SETTINGS, SimulatedEvent, both_histories, simulate
from segops.segments import service as segments
from segops.store import keys
from segops.warehouse import TenantWarehouse, chdb_backend

from benchmarks.harness import Figure, best_of, peak_rss_mb, percentile, ratio_figure
from tests.support.api import Api

SEED = 20260425
EVENT_TYPES = ["page_viewed", "order_placed", "product_viewed", "cart_updated", "context_identified", "email_opened"]
COLUMNS = ("tenant_id", "event_id", "message_id", "user_id", "event_type", "occurred_at", "received_at", "payload")
SANDBOX_USER = "sandbox-user"
SANDBOX_EVENTS = 10_000
SANDBOX_SEGMENTS = 100
SANDBOX_REQUESTS = 200


@contextmanager
def bench_stack() -> Iterator[LocalStack]:
    """A private stack; chDB allows one data directory per process, so reuse the one already open."""
    root = Path(tempfile.mkdtemp(prefix="segops-bench-segments-"))
    shared = chdb_backend._shared
    settings = Settings(
        environment="test",
        data_dir=root,
        chdb_path=shared.path if shared is not None else root / "chdb",
        clickhouse_database=f"bench_{uuid.uuid4().hex[:10]}",
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        jwt_secret="bench-" + uuid.uuid4().hex,
    )
    stack = LocalStack(settings)
    try:
        yield stack
    finally:
        stack.runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        stack.stop()


def signup(stack: LocalStack) -> tuple[int, dict[str, str]]:
    account = Api(stack).signup(slug="bench", email=f"bench-{uuid.uuid4().hex[:8]}@example.com")
    return account.tenant_id, account.bearer


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
    bodies = [
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
    for body in bodies[:100]:
        started = time.perf_counter()
        simulate(runtime, tenant_id, SimulatedEvent(body["user_id"], body["event_type"], None, body["payload"]))
        direct.append(time.perf_counter() - started)
    # The query of all 100 segments, only parsed and analysed (EXPLAIN PLAN): what an evaluation
    # spends before reading a single row, and why the sandbox evaluates only the affected segments.
    event = SimulatedEvent(SANDBOX_USER, "order_placed", None, {"total": 1})
    defined = [s for s in active_segments(runtime, tenant_id) if s.definition is not None]
    query = compile_segments(
        [(s.id, parse_definition(s.definition)) for s in defined], both_histories(event, now, now), members_only=False
    )
    analysed: list[float] = []
    for _ in bodies[:100]:
        started = time.perf_counter()
        TenantWarehouse(warehouse, tenant_id).query("EXPLAIN PLAN " + query.sql + _SETTINGS, query.bind(now))
        analysed.append(time.perf_counter() - started)
    floor: list[float] = []
    for _ in bodies:
        started = time.perf_counter()
        warehouse.query(
            "SELECT count(), max(occurred_at) FROM events WHERE tenant_id = {t:UInt64} AND user_id = {u:String}",
            {"t": tenant_id, "u": SANDBOX_USER},
        )
        floor.append(time.perf_counter() - started)
    floor_p99 = percentile(floor, 99) * 1000
    return [
        ratio_figure(
            "sandbox publish p99 (HTTP, 10k events, 100 segments)",
            percentile(http, 99) * 1000,
            "ms",
            "scan of the user's events p99",
            floor_p99,
            "p99 <= 50 ms",
            p50_ms=percentile(http, 50) * 1000,
            requests=len(http),
        ),
        ratio_figure(
            "sandbox evaluation p99 (service, one query)",
            percentile(direct, 99) * 1000,
            "ms",
            "scan of the user's events p99",
            floor_p99,
            p50_ms=percentile(direct, 50) * 1000,
        ),
        ratio_figure(
            "sandbox query parse+analysis p50 (EXPLAIN PLAN, all 100 segments)",
            percentile(analysed, 50) * 1000,
            "ms",
            "sandbox evaluation p50",
            percentile(direct, 50) * 1000,
            sql_chars=len(query.sql),
            parameters=len(query.params),
        ),
        Figure("sandbox peak RSS", peak_rss_mb(), "MB"),
    ]


THREE_CONDITIONS = {
    "logic": "AND",
    "conditions": [
        {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 3},
        {"type": "monetary", "event_type": "order_placed", "property": "total", "metric": "sum", "operator": "gte",
         "value": 300},
        {"type": "recency", "event_type": "order_placed", "operator": "lt", "window_days": 30},
    ],
}  # fmt: skip
EVERYONE = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 0}],
}
GENERATED_TYPES = [
    "page_viewed", "page_viewed", "page_viewed", "page_viewed", "product_viewed", "product_viewed", "product_viewed",
    "cart_updated", "cart_updated", "order_placed", "order_placed", "email_opened", "email_clicked", "search",
    "signup", "checkout_started", "refund_issued", "context_identified", "review_posted", "wishlist_added",
]  # fmt: skip


def generate_events(stack: LocalStack, tenant_id: int, users: int, events: int, now: datetime) -> None:
    """The reference data shape, generated inside ClickHouse (deterministic hashes of the row number)."""
    stack.runtime.warehouse.command(
        "INSERT INTO events SELECT {t:UInt64}, reinterpretAsUUID(sipHash128(number)), '', "
        "concat('u', leftPad(toString(cityHash64(number, 1) % {users:UInt64}), 8, '0')), "
        "{types:Array(String)}[1 + cityHash64(number, 2) % length({types:Array(String)})], "
        "{now:DateTime64(3, 'UTC')} - toIntervalMillisecond(cityHash64(number, 3) % 7776000000), "
        "{now:DateTime64(3, 'UTC')} - toIntervalMillisecond(cityHash64(number, 3) % 7776000000), "
        'concat(\'{"total":\', toString(cityHash64(number, 4) % 500), \',"path":"/p\', '
        "toString(cityHash64(number, 5) % 50), '\",\"plan\":\"', ['free','pro'][1 + number % 2], '\"}') "
        "FROM numbers({n:UInt64})",
        {"t": tenant_id, "users": users, "types": GENERATED_TYPES, "now": now, "n": events},
    )


class _CountingSink:
    def __init__(self) -> None:
        self.written = 0

    def write(self, chunk: bytes) -> int:
        self.written += len(chunk)
        return len(chunk)


def full_compute(stack: LocalStack, tenant_id: int, segment_id: int, now: datetime) -> None:
    from segops.compute import engine

    [outcome] = engine.compute(stack.runtime, tenant_id, [engine.Request(segment_id, "full")], now)
    assert outcome.status == "succeeded", outcome.error


def compute_and_export_figures(stack: LocalStack, scale: float) -> list[Figure]:
    import tracemalloc

    from segops.dsl import parse_definition
    from segops.exports import models as export_models
    from segops.exports.worker import run_export
    from segops.membership import store as membership
    from segops.messages import ExportRequested
    from segops.segments.preview import preview
    from segops.warehouse import TenantWarehouse

    runtime = stack.runtime
    tenant_id, _ = signup(stack)
    users, events = max(1_000, int(1_000_000 * scale)), max(10_000, int(10_000_000 * scale))
    now = datetime.now(UTC).replace(microsecond=0)
    generate_events(stack, tenant_id, users, events, now)

    def defined(definition: dict[str, Any]) -> int:
        made = segments.create_segment(
            runtime, tenant_id, name="bench", segment_type="rule", description="", active=True, created_by=None
        )
        segments.update_segment(runtime, tenant_id, made.id, {}, definition=definition, actor=None)
        return made.id

    figures: list[Figure] = []
    # preview (count + 10 samples) vs a full compute of the same definition
    three = defined(THREE_CONDITIONS)
    parsed = parse_definition(THREE_CONDITIONS)
    preview_s = best_of(lambda: preview(runtime, tenant_id, parsed, 10, now))
    compute_times = []
    for offset in range(3):
        started = time.perf_counter()
        full_compute(stack, tenant_id, three, now + timedelta(seconds=offset))
        compute_times.append(time.perf_counter() - started)
    figures.append(
        ratio_figure(
            f"preview count+10 samples ({events:,} events)", preview_s * 1000, "ms", "full compute, same definition",
            min(compute_times) * 1000, "<= 1.5x", matched=preview(runtime, tenant_id, parsed, 10, now).matched_users,
        )
    )  # fmt: skip

    # export of every user's membership vs ClickHouse rendering the same rows as Parquet into nothing
    everyone = defined(EVERYONE)
    full_compute(stack, tenant_id, everyone, now)
    snapshot = membership.latest_snapshot(runtime, tenant_id, everyone)
    assert snapshot is not None and snapshot.member_count > 0.99 * users, snapshot  # hashing leaves a few out
    exported = snapshot.member_count
    sql, params = membership.members_query(everyone, snapshot.version)
    warehouse = TenantWarehouse(runtime.warehouse, tenant_id)
    raw_s = best_of(lambda: warehouse.export(sql, params, "Parquet", _CountingSink()))  # type: ignore[arg-type]

    def export_once() -> None:
        export_id = runtime.documents.next_id("exports")
        runtime.documents.create(
            keys.export_key(tenant_id, export_id),
            export_models.Export(id=export_id, tenant=tenant_id, segment_id=everyone, format="parquet"),
        )
        done = run_export(
            runtime, ExportRequested(tenant_id=tenant_id, segment_id=everyone, export_id=export_id, format="parquet")
        )
        assert done.row_count == exported

    export_s = best_of(export_once)
    tracemalloc.start()
    export_once()
    python_peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
    tracemalloc.stop()
    figures.append(
        ratio_figure(
            f"export {exported:,} members to Parquet (object store)", export_s, "s", "raw SELECT ... FORMAT Parquet",
            raw_s, "<= 3 s at 1M", python_peak_mb=round(python_peak, 2),
        )
    )  # fmt: skip
    figures.append(Figure("export Python heap peak (tracemalloc)", python_peak, "MB"))
    return figures


def run(scale: float) -> list[Figure]:
    with bench_stack() as stack:
        figures = compute_and_export_figures(stack, scale)
    with bench_stack() as stack:
        figures += sandbox_figures(stack, scale)
    return figures
