"""Export jobs: queue (API), poll (API), download (API), and run (the `export_worker` function)."""

from __future__ import annotations

from datetime import datetime, timedelta

from segops import clock
from segops.bus.base import Topic
from segops.errors import Conflict, Gone, NotFound
from segops.exports import models as m
from segops.messages import ExportRequested
from segops.runtime import Runtime
from segops.segments import service as segments
from segops.store import keys

SIGNED_URL_LIFETIME = timedelta(minutes=15)


def request_export(
    runtime: Runtime, tenant_id: int, segment_id: int, fmt: m.ExportFormat, created_by: str | None
) -> m.Export:
    """Record a queued export of the segment's current members and hand it to `export_worker`."""
    segments.get_segment(runtime, tenant_id, segment_id)
    export = m.Export(
        id=runtime.documents.new_id("exports"),
        tenant=tenant_id,
        segment_id=segment_id,
        format=fmt,
        created_by=created_by,
    )
    runtime.documents.create(keys.export_key(tenant_id, export.id), export)
    message = ExportRequested(tenant_id=tenant_id, segment_id=segment_id, export_id=export.id, format=fmt)
    runtime.bus.publish(Topic.SEGMENT_EXPORTS, message.model_dump_json().encode(), {"tenant_id": str(tenant_id)})
    return export


def get_export(runtime: Runtime, tenant_id: int, export_id: int, segment_id: int | None = None) -> m.Export:
    """An export of the tenant (and of `segment_id` when given); anything else is a 404."""
    found = runtime.documents.load(keys.export_key(tenant_id, export_id), m.Export)
    if found is None or (segment_id is not None and found.segment_id != segment_id):
        raise NotFound("export not found", {"export_id": export_id})
    return found


def expires_at(runtime: Runtime, export: m.Export) -> datetime | None:
    """When a succeeded export's file goes (`SEGOPS_EXPORT_RETENTION_DAYS` after it was written)."""
    if export.status != "succeeded" or export.finished_at is None:
        return None
    return export.finished_at + timedelta(days=runtime.settings.export_retention_days)


def finished_export(runtime: Runtime, tenant_id: int, export_id: int) -> m.Export:
    """A downloadable export; 409 while it is still queued/running or if it failed, 410 once expired."""
    export = get_export(runtime, tenant_id, export_id)
    if export.status != "succeeded" or export.object_key is None:
        raise Conflict(f"export is {export.status}", {"export_id": export_id, "status": export.status})
    expiry = expires_at(runtime, export)
    if expiry is not None and clock.now() >= expiry:
        raise expired(export, expiry)
    return export


def expired(export: m.Export, expiry: datetime | None) -> Gone:
    return Gone(
        "this export's file has been deleted: start a new export",
        {"export_id": export.id, "expired_at": expiry.isoformat() if expiry else None},
    )
