"""Resource bounds for statements whose cost follows a tenant's size: computes and previews.

Each gets a SETTINGS clause: `max_execution_time`, `max_memory_usage`, and external aggregation and
sorting past a quarter of that memory, so a tenant larger than the memory limit completes (spilling
to temporary files) instead of failing. A quarter, not a half: reading blocks, each thread's
partial hash table and merging the spilled buckets need room of their own (measured on chDB 26.9
with 2 threads: at half or a third of a 50-100 MB limit the merge itself ran out of memory).
chDB honours all four settings like a ClickHouse server (tests/integration/compute/test_bounded.py).
"""

from __future__ import annotations

from segops.config import Settings
from segops.warehouse.base import render_settings


def limited(sql: str, settings: Settings, max_execution_seconds: int, **extra: str | int) -> str:
    """`sql` (one SELECT or INSERT … SELECT without its own SETTINGS) with its bounds, and `extra` query settings."""
    spill = settings.query_max_memory_bytes // 4
    clause = render_settings(
        {
            "max_execution_time": max_execution_seconds,
            "max_memory_usage": settings.query_max_memory_bytes,
            "max_bytes_before_external_group_by": spill,
            "max_bytes_before_external_sort": spill,
            **extra,
        }
    )
    return f"{sql}\nSETTINGS {clause}"
