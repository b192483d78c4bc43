"""Layout of `events` vs delta compute: does the primary key skip anything for 1,000 changed users?

The delta compute re-evaluates its candidates with the same pass as a full compute, restricted by
`user_id IN (SELECT user_id FROM <candidates>)` (the shape of `segops.compute.evaluate._candidate_source`).
How much of `events` that reads depends only on the table's layout, so this benchmark loads the
`bench_compute` data set into one `events` table per layout (migration 0001 verbatim, then variants of
it) and measures, per layout, the GROUP BY floor, the full one-segment pass, the 1,000-user pass, and
the granules the primary key selects for it (`EXPLAIN indexes = 1`).

Figures: `layout.<name>.delta_pass` vs the same layout's full pass (the delta target is <= 0.05x),
`layout.<name>.full_pass` vs migration 0001's full pass (what a layout change costs full computes).
"""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path

from segops.dsl import compile_segment, parse_definition
from segops.dsl.sources import EventSource
from segops.warehouse import TenantWarehouse, chdb_backend
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import available_migrations

from benchmarks.bench_compute import NOW, ONE_SEGMENT, generate
from benchmarks.harness import Figure, best_of, ratio_figure

TENANT = 7
CANDIDATES = 1000
_PARTITION = "PARTITION BY toYYYYMM(occurred_at)\n"
_SETTINGS = "SETTINGS non_replicated_deduplication_window"


def _events_ddl() -> str:
    """The `CREATE TABLE ... events` statement of migration 0001, verbatim."""
    script = next(sql for number, _, sql in available_migrations() if number == 1)
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    statement = next(s for s in code.split(";") if "CREATE TABLE IF NOT EXISTS events" in s)
    assert _PARTITION in statement and _SETTINGS in statement, "migration 0001 changed: update the variants"
    return statement


def layouts() -> dict[str, str]:
    """Layout name -> DDL: migration 0001, and variants without monthly partitions / with finer granules."""
    ddl = _events_ddl()
    unpartitioned = ddl.replace(_PARTITION, "")

    def granularity(statement: str, rows: int) -> str:
        return statement.replace(_SETTINGS, f"SETTINGS index_granularity = {rows}, non_replicated_deduplication_window")

    return {
        "migration_0001": ddl,
        "unpartitioned": unpartitioned,
        "unpartitioned_g1024": granularity(unpartitioned, 1024),
        "unpartitioned_g256": granularity(unpartitioned, 256),
    }


def _granules(wh: TenantWarehouse, sql: str, params: dict[str, object]) -> str:
    plan = wh.query(f"EXPLAIN indexes = 1 {sql}", params).rows
    found = [m.group(1) for (line,) in plan if (m := re.search(r"Granules: (\d+/\d+)", str(line)))]
    return found[-1] if found else "?"


def _measure(warehouse: ChdbWarehouse, scale: float) -> dict[str, float | str]:
    wh = TenantWarehouse(warehouse, TENANT)
    users, _ = generate(warehouse, TENANT, scale)
    warehouse.command("CREATE TABLE layout_candidates (user_id String) ENGINE = MergeTree ORDER BY user_id")
    warehouse.command(
        "INSERT INTO layout_candidates SELECT concat('user-', toString((number * 997 + 7919) % {users:UInt64})) "
        "FROM numbers({candidates:UInt64})",
        {"users": users, "candidates": CANDIDATES},
    )
    definition = parse_definition(ONE_SEGMENT)
    # Both passes aggregate raw `events` (an `EventSource`): the layout is all this module compares. The
    # compute engine's own passes read the per-user day states instead (docs/compute.md).
    full = compile_segment(definition, EventSource("events", "tenant_id = {tenant_id:UInt64}"))
    delta = compile_segment(
        definition,
        EventSource("events", "tenant_id = {tenant_id:UInt64} AND user_id IN (SELECT user_id FROM layout_candidates)"),
    )
    floor_sql = "SELECT user_id, count() FROM events WHERE tenant_id = {tenant_id:UInt64} GROUP BY user_id"
    return {
        "floor": best_of(lambda: wh.query(f"SELECT count() FROM ({floor_sql})")),
        "full": best_of(lambda: wh.query(f"SELECT count() FROM ({full.sql})", full.bind(NOW))),
        "delta": best_of(lambda: wh.query(f"SELECT count() FROM ({delta.sql})", delta.bind(NOW))),
        "granules": _granules(wh, delta.sql, delta.bind(NOW)),
        "parts": str(
            warehouse.query(
                "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active"
            ).scalar()
        ),
    }


def run(scale: float) -> list[Figure]:
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    path = opened or Path(tempfile.mkdtemp(prefix="segops-bench-layout-")) / "chdb"
    measured: dict[str, dict[str, float | str]] = {}
    for name, ddl in layouts().items():
        warehouse = ChdbWarehouse(path, f"bench_layout_{uuid.uuid4().hex[:8]}")
        try:
            warehouse.command(ddl)
            measured[name] = _measure(warehouse, scale)
        finally:
            warehouse.command(f"DROP DATABASE `{warehouse.database}`")
    baseline = float(measured["migration_0001"]["full"])
    figures = []
    for name, m in measured.items():
        full, delta = float(m["full"]), float(m["delta"])
        floor = round(float(m["floor"]) * 1000, 1)
        figures.append(
            ratio_figure(
                f"layout.{name}.delta_pass",
                delta * 1000,
                "ms",
                "same layout full pass",
                full * 1000,
                "<= 0.05x",
                granules=m["granules"],
                candidates=CANDIDATES,
            )
        )
        figures.append(
            ratio_figure(
                f"layout.{name}.full_pass", full * 1000, "ms", "migration_0001 full pass", baseline * 1000,
                floor_ms=floor, parts=m["parts"],
            )
        )  # fmt: skip
    return figures
