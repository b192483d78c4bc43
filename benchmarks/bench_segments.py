"""Segments API figures: member export vs raw `FORMAT Parquet`, preview vs full compute.

Data is generated deterministically (seeded) into a throwaway stack. The sandbox's figures are in
`bench_sandbox.py` (it reuses this module's data generators).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from segops.config import Settings
from segops.dsl import parse_definition
from segops.localstack import LocalStack
from segops.segments import service as segments
from segops.store import keys
from segops.warehouse import TenantWarehouse, chdb_backend

from benchmarks.harness import Figure, best_of, ratio_figure
from tests.support.api import Api


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
        jwt_secret=SecretStr("bench-" + uuid.uuid4().hex),
    )
    stack = LocalStack(settings)
    try:
        yield stack
    finally:
        stack.stop()  # its usage counts are written before their database goes (chDB stays open)
        stack.runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")


def signup(stack: LocalStack) -> tuple[int, dict[str, str]]:
    account = Api(stack).signup(slug="bench", email=f"bench-{uuid.uuid4().hex[:8]}@example.com")
    return account.tenant_id, account.bearer


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

    from segops.exports import models as export_models
    from segops.exports.worker import run_export
    from segops.membership import store as membership
    from segops.messages import ExportRequested
    from segops.segments.preview import preview

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
    snapshot = membership.latest_snapshot(runtime.warehouse, tenant_id, everyone)
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
        return compute_and_export_figures(stack, scale)
