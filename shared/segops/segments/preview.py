"""Preview: a definition's match count and a sample of members, without storing anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from segops import clock
from segops.dsl import SegmentDefinition, compile_segment, tenant_events
from segops.dsl.sources import split_by_users
from segops.runtime import Runtime
from segops.warehouse import TenantWarehouse
from segops.warehouse.limits import limited

MAX_SAMPLE = 1000


@dataclass(frozen=True)
class Preview:
    matched_users: int
    sample_user_ids: list[str]
    sql: str


def preview(
    runtime: Runtime, tenant_id: int, definition: SegmentDefinition, limit: int, now: datetime | None = None
) -> Preview:
    """Count and the first `limit` member ids (by id), read-only; `sql` keeps its placeholders. Like a
    compute pass, it reads one range of users per statement when the users' states would not fit in
    memory without spilling (`segops.dsl.sources.split_by_users`); the ranges follow the users'
    order, so the first ranges' samples are the first members."""
    if not 0 <= limit <= MAX_SAMPLE:
        raise ValueError(f"limit must be within 0..{MAX_SAMPLE}")
    query = compile_segment(definition)
    settings, at = runtime.settings, now or clock.now()
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    ranges = split_by_users(wh, tenant_events(), None, query.aggregates, settings)
    parts = [query] if len(ranges) == 1 else [compile_segment(definition, users) for users in ranges]
    matched, sample = 0, list[str]()
    for part in parts:
        # groupArraySorted keeps at most MAX_SAMPLE ids while scanning: memory stays bounded for any match count.
        sample_ids = f"arraySlice(groupArraySorted({MAX_SAMPLE})(user_id), 1, {{sample:UInt32}})"
        sql = f"SELECT count() AS matched, {sample_ids} AS sample\nFROM (\n{part.sql}\n)"
        params = {**part.bind(at), "sample": limit - len(sample)}
        row = wh.query(limited(sql, settings, settings.request_max_execution_seconds), params).dicts()[0]
        matched += int(row["matched"])
        sample += row["sample"]
    return Preview(matched_users=matched, sample_user_ids=sample, sql=query.sql)
