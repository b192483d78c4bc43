"""`export_worker`: ClickHouse renders the members file, which streams through a pipe into the object store.

Python never holds the file: the warehouse writes `CSVWithNames`/`Parquet` into one end of an OS
pipe while the object store uploads from the other. The export reads one pinned membership
snapshot, so `row_count` (from that snapshot's commit row) always matches the file.
"""

from __future__ import annotations

import logging
from typing import IO

from segops import clock
from segops.bus import dead_letters
from segops.bus.base import BusMessage
from segops.bus.cloudevents import parse_message
from segops.errors import NotFound, PermanentError, RetryableError, tenant_message
from segops.exports import models as m
from segops.exports.formulas import neutralized_user_ids
from segops.exports.pipe import pipe
from segops.membership import store as membership
from segops.messages import ExportRequested
from segops.metering import units as metering
from segops.runtime import Runtime
from segops.segments import service as segments
from segops.store import keys
from segops.warehouse import TenantWarehouse

log = logging.getLogger("segops.exports")


def handle_export_message(message: BusMessage, runtime: Runtime) -> None:
    final = message.delivery_attempt >= dead_letters.last_attempt("export_worker", runtime.settings)
    run_export(runtime, parse_message(message, ExportRequested), final_attempt=final)


def run_export(runtime: Runtime, request: ExportRequested, final_attempt: bool = True) -> m.Export:
    """Produce the file of one queued export; a redelivery of a finished export does nothing. A failed
    attempt the bus will retry leaves the export `queued` (a client polling for `failed` must not give
    up on it); the last one records it `failed`."""
    key = keys.export_key(request.tenant_id, request.export_id)
    export = runtime.documents.load(key, m.Export)
    if export is None or export.segment_id != request.segment_id:
        raise PermanentError("unknown export", {"export_id": request.export_id})
    if export.status == "succeeded":
        return export
    started = clock.now()
    runtime.documents.update(key, m.Export, lambda e: e.model_copy(update={"status": "running", "started_at": started}))
    try:
        segments.get_segment(runtime, request.tenant_id, request.segment_id)
        snapshot = membership.latest_snapshot(runtime.warehouse, request.tenant_id, request.segment_id)
        object_key = m.object_key(request.tenant_id, export.id, export.segment_id, export.format)
        size = _render(runtime, request, snapshot.version if snapshot else 0, object_key)
    except NotFound as exc:
        _finish(runtime, key, status="failed", error="segment was deleted")
        raise PermanentError("segment was deleted", {"export_id": export.id}) from exc
    except Exception as exc:
        message, incident = tenant_message(exc)
        log.exception(
            "export failed", extra={"tenant_id": request.tenant_id, "export_id": export.id, "incident": incident}
        )
        if final_attempt:
            _finish(runtime, key, status="failed", error=message)
        else:
            runtime.documents.update(key, m.Export, lambda e: e.model_copy(update={"status": "queued", "error": None}))
        raise RetryableError("export failed", {"export_id": export.id}) from exc
    finished = _finish(
        runtime,
        key,
        status="succeeded",
        row_count=snapshot.member_count if snapshot else 0,
        size_bytes=size,
        object_key=object_key,
        error=None,
    )
    metering.export_file(runtime, request.tenant_id, export.id, export.format, finished.row_count or 0, size)
    log.info(
        "export finished",
        extra={"tenant_id": request.tenant_id, "export_id": export.id, "rows": finished.row_count, "bytes": size},
    )
    return finished


def _render(runtime: Runtime, request: ExportRequested, snapshot: int, object_key: str) -> int:
    sql, params = membership.members_query(request.segment_id, snapshot)
    if request.format == "csv":
        sql, params = neutralized_user_ids(sql, params)
    warehouse = TenantWarehouse(runtime.warehouse, request.tenant_id)

    def produce(sink: IO[bytes]) -> int:
        return warehouse.export(sql, params, m.CLICKHOUSE_FORMAT[request.format], sink)

    def consume(source: IO[bytes]) -> int:
        return runtime.objects.upload(object_key, source, m.CONTENT_TYPE[request.format])

    size: int = pipe(produce, consume)
    return size


def _finish(runtime: Runtime, key: str, **changes: object) -> m.Export:
    done = runtime.documents.update(
        key, m.Export, lambda e: e.model_copy(update={**changes, "finished_at": clock.now()})
    )
    if done is None:
        raise PermanentError("export record vanished", {"key": key})
    return done
