"""Lookalike quality and cost on the compute benchmark's data set with a planted audience.

Data: `bench_compute.generate` (1,000,000 users x scale, 10M events x scale, 12 event types), plus a
hidden cohort of 2% of the users who share a behaviour pattern: 3 extra `trial_started` and 2 extra
`support_contacted` events in the last 30 days, and the `team` plan. Everybody else does those
events too, at their ordinary (Zipf) rates. The seed segment is 20% of the cohort (they carry a
`partner_invited` event), computed by the engine like any rule segment.

Figures:
1. precision@k of the lookalike (k = the cohort members outside the seed; the lookalike's `size`)
   vs the base rate (the cohort's share of all non-seed users), target >= 5x;
2. the lookalike's whole published compute (features, training, scoring, diff, commit) vs a
   one-segment full compute (`bench_compute.ONE_SEGMENT`) on the same data, target <= 3x.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from segops.compute import engine
from segops.compute.engine import Request
from segops.config import Settings
from segops.localstack import LocalStack
from segops.membership import store
from segops.segments.models import Segment
from segops.store import keys
from segops.warehouse import TenantWarehouse, chdb_backend

from benchmarks.bench_compute import _INSERT, NOW, ONE_SEGMENT, generate
from benchmarks.harness import Figure, best_of, peak_rss_mb, ratio_figure

COHORT = "cityHash64(user_id, 99) % 100 < 2"
SEED = f"{COHORT} AND cityHash64(user_id, 98) % 5 = 0"
INVITED = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "partner_invited", "operator": "gte", "value": 1}],
}


def plant(wh: TenantWarehouse) -> None:
    """The cohort's shared behaviour, and the seed's marker event."""
    users = "SELECT DISTINCT user_id FROM events WHERE tenant_id = {tenant_id:UInt64}"
    at = "subtractMilliseconds({now:DateTime64(3, 'UTC')}, cityHash64(user_id, n) % (30 * 86400000))"
    for event_type, times in (("trial_started", 3), ("support_contacted", 2)):
        wh.command(
            _INSERT + "SELECT {tenant_id:UInt64}, generateUUIDv4(cityHash64(user_id, n)), '', user_id, "
            f"{{event_type:String}}, {at}, {at}, '{{}}' FROM ({users}) ARRAY JOIN range({{times:UInt32}}) AS n "
            f"WHERE {COHORT}",
            {"now": NOW, "event_type": event_type, "times": times},
        )
    wh.command(
        _INSERT + "SELECT {tenant_id:UInt64}, generateUUIDv4(cityHash64(user_id, 97)), '', user_id, "
        "'context_identified', {now:DateTime64(3, 'UTC')}, {now:DateTime64(3, 'UTC')}, "
        f'\'{{"plan":"team"}}\' FROM ({users}) WHERE {COHORT}',
        {"now": NOW},
    )
    wh.command(
        _INSERT + "SELECT {tenant_id:UInt64}, generateUUIDv4(cityHash64(user_id, 96)), '', user_id, "
        "'partner_invited', {invited:DateTime64(3, 'UTC')}, {invited:DateTime64(3, 'UTC')}, "
        f"'{{}}' FROM ({users}) WHERE {SEED}",
        {"invited": NOW - timedelta(days=40)},
    )


def _put(stack: LocalStack, tenant_id: int, segment_id: int, definition: Mapping[str, object], kind: str) -> None:
    stack.runtime.documents.save(
        keys.segment_key(tenant_id, segment_id),
        Segment(
            id=segment_id,
            tenant=tenant_id,
            name=f"bench {segment_id}",
            segment_type=kind,  # type: ignore[arg-type]
            definition=dict(definition),
            version=1,
        ),
    )


def _figures(stack: LocalStack, tenant_id: int) -> list[Figure]:
    runtime = stack.runtime
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    plant(wh)
    universe = "SELECT DISTINCT user_id FROM events WHERE tenant_id = {tenant_id:UInt64}"
    cohort, seed, users = (
        int(v)
        for v in wh.query(
            f"SELECT countIf({COHORT}), countIf({SEED}), count() FROM ({universe})",
        ).rows[0]
    )
    k = cohort - seed
    _put(stack, tenant_id, 1, INVITED, "rule")
    _put(stack, tenant_id, 2, ONE_SEGMENT, "rule")
    _put(stack, tenant_id, 3, {"seed_segment_id": 1, "size": k}, "lookalike")
    at = iter(NOW + timedelta(seconds=s) for s in range(1, 100))
    [seeded] = engine.compute(runtime, tenant_id, [Request(1, "full")], next(at))
    assert seeded.status == "succeeded" and store.member_count(runtime.warehouse, tenant_id, 1) == seed
    one = best_of(lambda: engine.compute(runtime, tenant_id, [Request(2, "full")], next(at)))
    times = []
    for _ in range(2):
        started = time.perf_counter()
        [outcome] = engine.compute(runtime, tenant_id, [Request(3, "full")], next(at))
        times.append(time.perf_counter() - started)
        assert outcome.status == "succeeded", outcome.error
    members = set(store.iter_members(runtime.warehouse, tenant_id, 3))
    hits = int(
        runtime.warehouse.query(
            f"SELECT countIf({COHORT}) FROM (SELECT arrayJoin({{members:Array(String)}}) AS user_id)",
            {"members": sorted(members)},
        ).scalar()
    )
    precision = hits / len(members)
    base_rate = k / (users - seed)
    return [
        ratio_figure(
            "lookalike.precision_at_k",
            precision,
            "share",
            "base_rate",
            base_rate,
            ">= 5x",
            k=k,
            users=users,
            cohort=cohort,
            seed=seed,
            members=len(members),
        ),
        ratio_figure(
            "lookalike.compute_published", min(times) * 1000, "ms", "full_published_1_segment", one * 1000, "<= 3x"
        ),
        Figure("lookalike.peak_rss", peak_rss_mb(), "MB"),
    ]


def run(scale: float) -> list[Figure]:
    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-lookalike-"))
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    try:
        settings = Settings(
            environment="test",
            data_dir=workdir,
            chdb_path=opened or workdir / "chdb",
            clickhouse_database=f"bench_lookalike_{uuid.uuid4().hex[:8]}",
            jwt_secret=SecretStr("bench-" + uuid.uuid4().hex),
        )
        stack = LocalStack(settings)
        try:
            tenant_id = 1
            generate(stack.runtime.warehouse, tenant_id, scale)
            return _figures(stack, tenant_id)
        finally:
            stack.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
