"""HTTP routes for member exports (the `api` function); the work is done by `export_worker`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from flask import Response, stream_with_context
from pydantic import BaseModel, Field

from segops import clock
from segops.boundary import StrictModel
from segops.exports import models as m
from segops.exports import service
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.ids import Id
from segops.segments.api import SEGMENT, actor
from segops.store import keys

router = Router("/api/segments", role="member")
# Routes on one object: a user of several tenants needs not name the tenant (segops.http.authentication).
EXPORT = ("export_id", keys.export_key)


class ExportCreate(StrictModel):
    format: m.ExportFormat = "csv"


class ExportQuery(StrictModel):
    export_id: Id


class ExportOut(BaseModel):
    id: int
    export_id: int
    segment_id: int
    format: m.ExportFormat
    status: m.ExportStatus
    row_count: int | None
    size_bytes: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="A succeeded export's file is deleted then; downloading it afterwards is 410 `gone`."
    )
    download_url: str | None = Field(description="Present once the export succeeded, until it expires.")


def export_out(ctx: RequestContext, export: m.Export) -> ExportOut:
    expiry = service.expires_at(ctx.runtime, export)
    live = export.status == "succeeded" and (expiry is None or clock.now() < expiry)
    url = f"/api/segments/exports/{export.id}/download/" if live else None
    fields = export.model_dump(exclude={"tenant", "object_key", "created_by"})
    return ExportOut(**fields, export_id=export.id, expires_at=expiry, download_url=url)


@router.post("/<int:segment_id>/export/", tenant_from_object=SEGMENT, body=ExportCreate, response=ExportOut, status=202)
def start_export(ctx: RequestContext) -> Result:
    """Queue an export of the segment's members (`csv` or `parquet`); poll with `?export_id=`."""
    body: ExportCreate = ctx.body
    export = service.request_export(ctx.runtime, ctx.tenant_id, ctx.path_params["segment_id"], body.format, actor(ctx))
    return Result(export_out(ctx, export), status=202)


@router.get("/<int:segment_id>/export/", tenant_from_object=SEGMENT, query=ExportQuery, response=ExportOut)
def poll_export(ctx: RequestContext) -> ExportOut:
    """Status, format, row count and timestamps of one export of this segment."""
    query: ExportQuery = ctx.query
    export = service.get_export(ctx.runtime, ctx.tenant_id, query.export_id, ctx.path_params["segment_id"])
    return export_out(ctx, export)


@router.get("/exports/<int:export_id>/download/", tenant_from_object=EXPORT)
def download_export(ctx: RequestContext) -> Response:
    """302 to a short-lived signed URL (GCS), or the file streamed (local object store)."""
    export = service.finished_export(ctx.runtime, ctx.tenant_id, ctx.path_params["export_id"])
    assert export.object_key is not None
    objects = ctx.runtime.objects
    url = objects.signed_url(export.object_key, service.SIGNED_URL_LIFETIME)
    if url is not None:
        return Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
    try:
        source = objects.open(export.object_key)
    except FileNotFoundError:  # deleted before its time (by hand, or by a shorter bucket rule)
        raise service.expired(export, service.expires_at(ctx.runtime, export)) from None

    def chunks() -> Iterator[bytes]:
        with source:
            while chunk := source.read(1 << 20):
                yield chunk

    filename = export.object_key.rsplit("/", 1)[-1]
    return Response(
        stream_with_context(chunks()),
        mimetype=m.CONTENT_TYPE[export.format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
