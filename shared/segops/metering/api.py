"""`GET /api/usage/`: a tenant's billable units per hour or day, as JSON or CSV (owners and admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from flask import Response
from pydantic import BaseModel, Field, field_validator, model_validator

from segops import clock
from segops.boundary import StrictModel
from segops.http.routes import RequestContext, Router
from segops.metering.meter import Metric, hour_of
from segops.metering.usage import Granularity, as_csv, totals, usage_rows

router = Router("/api/usage", role="admin")

# Bounded reads: at most 31 days of hours (744 buckets) or 366 days of days, within what the
# warehouse's `DateTime` holds.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 1, 1, tzinfo=UTC)
MAX_SPAN: dict[Granularity, timedelta] = {"hour": timedelta(days=31), "day": timedelta(days=366)}
DEFAULT_SPAN: dict[Granularity, timedelta] = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


def _floor(instant: datetime, granularity: Granularity) -> datetime:
    start = hour_of(instant)
    return start.replace(hour=0) if granularity == "day" else start


class UsageQuery(StrictModel):
    start: datetime | None = Field(
        default=None,
        alias="from",
        description="Inclusive, rounded down to its hour or day; naive means UTC. Default: `to` minus 24 h "
        "(hour) or 30 days (day).",
    )
    end: datetime | None = Field(
        default=None,
        alias="to",
        description="Exclusive, rounded up to its hour or day; naive means UTC. Default: the end of the current "
        "hour or day.",
    )
    granularity: Granularity = "hour"
    format: Literal["json", "csv"] = Field(
        default="json", description="`csv`: `text/csv`, one row per bucket, metric and dimension."
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = clock.as_utc(value)
        if not EARLIEST <= value < LATEST:
            raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
        return value

    @model_validator(mode="after")
    def _period(self) -> UsageQuery:
        step = timedelta(hours=1) if self.granularity == "hour" else timedelta(days=1)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("`from` must be before `to`")  # as sent, before either is rounded
        if self.end is None:
            self.end = _floor(clock.now(), self.granularity) + step
        elif _floor(self.end, self.granularity) != self.end:
            # Whole buckets: the end rounded up (an instant already on a boundary stays).
            self.end = _floor(self.end, self.granularity) + step
        self.start = _floor(self.start or self.end - DEFAULT_SPAN[self.granularity], self.granularity)
        if self.start >= self.end:
            raise ValueError("`from` must be before `to`")
        if self.end - self.start > MAX_SPAN[self.granularity]:
            days = MAX_SPAN[self.granularity].days
            raise ValueError(f"at most {days} days per request at granularity {self.granularity}")
        return self


class UsageBucket(BaseModel):
    start: datetime
    values: dict[Metric, int] = Field(description="The metrics used in this bucket (others are 0).")


class UsageBreakdown(BaseModel):
    metric: Metric
    dimension: str = Field(
        description="API calls: `<function>:<status class>`; events: the source; computes: the mode; exports: "
        "the format; connector syncs: the connector type; AI drafts: the provider; else empty."
    )
    value: int


class UsageReport(BaseModel):
    start: datetime = Field(description="The period's first bucket (`from` rounded down).")
    end: datetime = Field(description="The period's end, exclusive (`to` rounded up).")
    granularity: Granularity
    totals: dict[Metric, int] = Field(description="Every metric over the period, 0 when unused.")
    timeseries: list[UsageBucket] = Field(description="Buckets with any usage, oldest first.")
    breakdown: list[UsageBreakdown] = Field(description="Totals per metric and dimension over the period.")


@router.get("/", query=UsageQuery, response=UsageReport, also_media=("text/csv",))
def usage(ctx: RequestContext) -> UsageReport | Response:
    """Billable units of the tenant per hour or day (`docs/operations.md` § Usage metering)."""
    query: UsageQuery = ctx.query
    assert query.start is not None and query.end is not None  # set by the model's validator
    rows = usage_rows(ctx.runtime, ctx.tenant_id, query.start, query.end, query.granularity)
    if query.format == "csv":
        filename = f"usage-{query.start:%Y%m%dT%H}-{query.end:%Y%m%dT%H}-{query.granularity}.csv"
        return Response(
            as_csv(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
        )
    buckets: dict[datetime, dict[Metric, int]] = {}
    breakdown: dict[tuple[Metric, str], int] = {}
    for row in rows:
        values = buckets.setdefault(row.start, {})
        values[row.metric] = values.get(row.metric, 0) + row.value
        breakdown[(row.metric, row.dimension)] = breakdown.get((row.metric, row.dimension), 0) + row.value
    return UsageReport(
        start=query.start,
        end=query.end,
        granularity=query.granularity,
        totals=totals(rows),
        timeseries=[UsageBucket(start=start, values=values) for start, values in buckets.items()],
        breakdown=[UsageBreakdown(metric=m, dimension=d, value=v) for (m, d), v in sorted(breakdown.items())],
    )
