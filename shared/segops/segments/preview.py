"""Preview: a definition's match count and a sample of members, without storing anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from segops import clock
from segops.dsl import SegmentDefinition, compile_segment
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
    """Count and the first `limit` member ids (by id) in one read-only pass; `sql` keeps its placeholders."""
    if not 0 <= limit <= MAX_SAMPLE:
        raise ValueError(f"limit must be within 0..{MAX_SAMPLE}")
    query = compile_segment(definition)
    # groupArraySorted keeps at most MAX_SAMPLE ids while scanning: memory stays bounded for any match count.
    sql = (
        "SELECT count() AS matched, "
        f"arraySlice(groupArraySorted({MAX_SAMPLE})(user_id), 1, {{sample:UInt32}}) AS sample\nFROM (\n{query.sql}\n)"
    )
    params = {**query.bind(now or clock.now()), "sample": limit}
    bounded = limited(sql, runtime.settings, runtime.settings.request_max_execution_seconds)
    row = TenantWarehouse(runtime.warehouse, tenant_id).query(bounded, params).dicts()[0]
    return Preview(matched_users=int(row["matched"]), sample_user_ids=list(row["sample"]), sql=query.sql)
