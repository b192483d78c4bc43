"""Export jobs. Key layout: `tenants/<t>/exports/<id>` (`Export`); files under `<t>/exports/<id>/`
(every object key starts with the tenant id)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from segops import clock

ExportFormat = Literal["csv", "parquet"]
ExportStatus = Literal["queued", "running", "succeeded", "failed"]

CLICKHOUSE_FORMAT: dict[ExportFormat, str] = {"csv": "CSVWithNames", "parquet": "Parquet"}
CONTENT_TYPE: dict[ExportFormat, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class Export(BaseModel):
    id: int
    tenant: int
    segment_id: int
    format: ExportFormat
    status: ExportStatus = "queued"
    row_count: int | None = None
    size_bytes: int | None = None
    object_key: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=clock.now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: str | None = None


def object_key(tenant_id: int, export_id: int, segment_id: int, fmt: ExportFormat) -> str:
    return f"{tenant_id}/exports/{export_id}/segment-{segment_id}.{fmt}"
