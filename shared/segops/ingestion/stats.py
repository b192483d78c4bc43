"""`GET /api/ingestion/stats/`: counts by receive time over the last 24 h (hourly), 7 d or 30 d (daily)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from segops import clock
from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

Window = Literal["24h", "7d", "30d"]


@dataclass(frozen=True)
class WindowShape:
    bucket_sql: str
    step: timedelta
    buckets: int


WINDOWS: dict[str, WindowShape] = {
    "24h": WindowShape("toUnixTimestamp(toStartOfHour(received_at))", timedelta(hours=1), 24),
    "7d": WindowShape("toUnixTimestamp(toStartOfDay(received_at))", timedelta(days=1), 7),
    "30d": WindowShape("toUnixTimestamp(toStartOfDay(received_at))", timedelta(days=1), 30),
}


class TimeBucket(BaseModel):
    bucket: str
    event_count: int
    unique_users: int


class EventTypeCount(BaseModel):
    event_type: str
    count: int


class IngestionStats(BaseModel):
    window: Window
    total_events: int
    unique_users: int
    timeseries: list[TimeBucket]
    event_types: list[EventTypeCount]


def _floor(moment: datetime, step: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if step == timedelta(days=1):
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _bucket_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ingestion_stats(runtime: Runtime, tenant_id: int, window: Window, now: datetime | None = None) -> IngestionStats:
    """Every bucket of the window is listed (zeros included), oldest first; the current bucket is partial."""
    shape = WINDOWS[window]
    now = (now or clock.now()).astimezone(UTC)
    first = _floor(now, shape.step) - shape.step * (shape.buckets - 1)
    scoped = TenantWarehouse(runtime.warehouse, tenant_id)
    where = (
        "tenant_id = {tenant_id:UInt64} AND received_at >= {start:DateTime64(3, 'UTC')} "
        "AND received_at <= {end:DateTime64(3, 'UTC')}"
    )
    params = {"start": first, "end": now}
    # One scan for the three answers. grouping() in the SQL standard's sense (a bit set per argument
    # left out of the set): the window's totals 3, per bucket 1, per event type 2.
    rows = scoped.query(
        f"SELECT grouping(bucket, event_type) AS level, bucket, event_type, count(), uniqExact(user_id) "
        f"FROM (SELECT {shape.bucket_sql} AS bucket, event_type, user_id FROM events WHERE {where}) "
        "GROUP BY GROUPING SETS ((), (bucket), (event_type)) SETTINGS force_grouping_standard_compatibility = 1",
        params,
    ).rows
    totals = (0, 0)
    by_bucket: dict[str, tuple[int, int]] = {}
    types: list[tuple[str, int]] = []
    for level, bucket, event_type, n, users in rows:
        if level == 3:
            totals = (int(n), int(users))
        elif level == 1:
            by_bucket[_bucket_text(datetime.fromtimestamp(int(bucket), UTC))] = (int(n), int(users))
        else:
            types.append((str(event_type), int(n)))
    types.sort(key=lambda t: (-t[1], t[0]))
    timeseries = []
    for i in range(shape.buckets):
        label = _bucket_text(first + shape.step * i)
        n, users = by_bucket.get(label, (0, 0))
        timeseries.append(TimeBucket(bucket=label, event_count=n, unique_users=users))
    return IngestionStats(
        window=window,
        total_events=totals[0],
        unique_users=totals[1],
        timeseries=timeseries,
        event_types=[EventTypeCount(event_type=t, count=n) for t, n in types],
    )
