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
    totals = scoped.query(f"SELECT count(), uniqExact(user_id) FROM events WHERE {where}", params).rows[0]
    series = scoped.query(
        f"SELECT {shape.bucket_sql} AS bucket, count() AS n, uniqExact(user_id) AS users "
        f"FROM events WHERE {where} GROUP BY bucket",
        params,
    ).rows
    by_bucket = {_bucket_text(datetime.fromtimestamp(int(b), UTC)): (int(n), int(users)) for b, n, users in series}
    timeseries = []
    for i in range(shape.buckets):
        label = _bucket_text(first + shape.step * i)
        n, users = by_bucket.get(label, (0, 0))
        timeseries.append(TimeBucket(bucket=label, event_count=n, unique_users=users))
    types = scoped.query(
        f"SELECT event_type, count() AS n FROM events WHERE {where} GROUP BY event_type ORDER BY n DESC, event_type",
        params,
    ).rows
    return IngestionStats(
        window=window,
        total_events=int(totals[0]),
        unique_users=int(totals[1]),
        timeseries=timeseries,
        event_types=[EventTypeCount(event_type=str(t), count=int(n)) for t, n in types],
    )
