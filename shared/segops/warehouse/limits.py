"""Resource bounds for statements whose cost follows a tenant's size: computes and previews.

Each gets a SETTINGS clause: `max_execution_time`, `max_memory_usage`, and external aggregation and
sorting past a quarter of that memory (`spill_bytes`), so an aggregation that outgrows its estimate
spills to temporary files instead of failing. A quarter, not a half: reading blocks, each thread's
partial hash table and merging the spilled buckets need room of their own (measured on chDB 26.9
with 2 threads: at half or a third of a 50-100 MB limit the merge itself ran out of memory).
chDB honours all four settings like a ClickHouse server (tests/integration/compute/test_bounded.py).

Spilling alone does not bound a pass's memory: merging the spilled state opens every temporary file
at once, each reader with its own buffers and deserialisation arena (~4 MiB), and the number of files
follows the tenant's data, not the limit (a user's state lands in a file per spill it survives; on
ClickHouse 26.x the adaptive GROUP BY spills in small parts). The scale-1.0
benchmark tenant failed that way under 2 GB (docs/performance.md), and spilling is several times
slower besides. So a compute pass is split into ranges of users (`user_parts`) whose states fit in
half the spill threshold, the other half left to the blocks in flight: the memory of each
statement follows the settings, and a larger tenant only means more statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segops.config import Settings
from segops.warehouse.base import TenantWarehouse, render_settings

# A compute pass's memory per user at its peak, with a margin over what chDB 26.9 measured without
# spilling (the benchmark's 51 segments, 71 aggregates: ~3 KB per user plus ~50 MB of blocks in
# flight, docs/performance.md): a fixed part (key, hash cell, the latest identify's payload) and a
# part per aggregate state.
USER_BYTES = 256
AGGREGATE_BYTES = 48
SAMPLE = 64  # one user in SAMPLE (by hash) estimates a large pass's users and where to split them


def spill_bytes(settings: Settings) -> int:
    """The external GROUP BY/sort threshold: a quarter of the memory limit (see the module doc)."""
    return settings.query_max_memory_bytes // 4


def pass_bytes(users: int, aggregates: int) -> int:
    """Estimated peak memory of a pass holding `aggregates` states for each of `users` users."""
    return users * (USER_BYTES + AGGREGATE_BYTES * aggregates)


def user_parts(users: int, aggregates: int, settings: Settings) -> int:
    """Into how many parts by user a pass must be split for each part's states to fit in half the spill threshold."""
    return max(1, -(-pass_bytes(users, aggregates) // (spill_bytes(settings) // 2)))


def split_points(
    wh: TenantWarehouse, scope: str, params: Mapping[str, Any], users: int | None, aggregates: int, settings: Settings
) -> list[str]:
    """The `user_id`s where a pass over the users of `user_day_states` matching `scope` (a condition on
    its `tenant_id` and `user_id`) is split into ranges (none: one statement), for `users` users when
    known; else counted as state rows first, which is cheap and at least one per user, then sampled
    only if even those do not fit in one part. The points are quantiles of a 1-in-`SAMPLE` sample of
    the users (by hash), in the warehouse's order (never re-sorted here: ranges must follow its comparison)."""
    seconds = settings.compute_max_execution_seconds
    if users is None:
        rows = wh.query(limited(f"SELECT count() FROM user_day_states WHERE {scope}", settings, seconds), params)
        users = int(rows.scalar() or 0)
    if user_parts(users, aggregates, settings) == 1:
        return []
    sampled = (
        f"SELECT user_id FROM user_day_states WHERE {scope} AND cityHash64(user_id) % {{sample:UInt64}} = 0 "
        "GROUP BY user_id ORDER BY user_id"
    )
    found = wh.query(limited(sampled, settings, seconds), {**params, "sample": SAMPLE})
    sample = [str(user) for (user,) in found.rows]
    parts = user_parts(len(sample) * SAMPLE, aggregates, settings)
    return list(dict.fromkeys(sample[len(sample) * i // parts] for i in range(1, parts)))


def limited(sql: str, settings: Settings, max_execution_seconds: int, **extra: str | int) -> str:
    """`sql` (one SELECT or INSERT … SELECT without its own SETTINGS) with its bounds, and `extra` query settings."""
    spill = spill_bytes(settings)
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
