"""A tenant's usage over a period, per hour or day: what `GET /api/usage/` reports."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from segops.metering.meter import METRICS, Metric, meter_for
from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

Granularity = Literal["hour", "day"]

USAGE_SQL = """
SELECT bucket, metric, dimension, sum(value) AS total FROM (
    SELECT if({daily:UInt8}, toStartOfDay(hour), toStartOfHour(hour)) AS bucket, metric, dimension, value
    FROM usage
    WHERE tenant_id = {tenant_id:UInt64} AND hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}
    UNION ALL
    SELECT if({daily:UInt8}, toStartOfDay(hour), toStartOfHour(hour)) AS bucket, metric, dimension, value
    FROM usage_units FINAL
    WHERE tenant_id = {tenant_id:UInt64} AND hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}
)
GROUP BY bucket, metric, dimension
ORDER BY bucket, metric, dimension
"""


@dataclass(frozen=True)
class UsageRow:
    start: datetime
    metric: Metric
    dimension: str
    value: int


def usage_rows(
    runtime: Runtime, tenant_id: int, start: datetime, end: datetime, granularity: Granularity
) -> list[UsageRow]:
    """Units in [start, end) summed per bucket, metric and dimension, ordered by bucket."""
    # This process's own counts are visible at once (the dev server is one process); other
    # processes' within their flush interval.
    meter_for(runtime).flush()
    rows = (
        TenantWarehouse(runtime.warehouse, tenant_id)
        .query(USAGE_SQL, {"start": start, "end": end, "daily": granularity == "day"})
        .rows
    )
    known = set(METRICS)
    return [UsageRow(row[0], row[1], row[2], int(row[3])) for row in rows if row[1] in known]


def totals(rows: list[UsageRow]) -> dict[Metric, int]:
    """Every metric, zero when unused."""
    summed: dict[Metric, int] = dict.fromkeys(METRICS, 0)
    for row in rows:
        summed[row.metric] += row.value
    return summed


def as_csv(rows: list[UsageRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "metric", "dimension", "value"])
    for row in rows:
        writer.writerow([row.start.strftime("%Y-%m-%dT%H:%M:%SZ"), row.metric, row.dimension, row.value])
    return out.getvalue()
