"""`ingestion_errors`: what was refused or dropped, per tenant, for `GET /api/ingestion/errors/`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from segops import clock
from segops.metering.meter import meter_for
from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

log = logging.getLogger("segops.ingestion")

MAX_DETAIL_CHARS = 1000
COLUMNS = ("tenant_id", "ts", "error_type", "detail", "source")
# The source of what the event writer records (`segops.ingestion.writer`): dead letters and malformed
# bus messages, about events the edge had accepted; every other source records refusals.
WRITER_SOURCE = "writer"


@dataclass(frozen=True)
class ErrorRecord:
    error_type: str
    detail: str


def record_errors(
    runtime: Runtime,
    tenant_id: int,
    source: str,
    errors: Sequence[ErrorRecord],
    at: datetime | None = None,
    metered: bool = True,
) -> None:
    """Insert one row per error (one block per call). Never raises: recording must not fail ingestion.
    Each is a refused event on the bill (`events_refused`) unless `metered` is false."""
    if not errors:
        return
    if metered and source != WRITER_SOURCE:  # the writer records trouble with events already accepted
        meter_for(runtime).count(tenant_id, "events_refused", len(errors), source)
    ts = (at or clock.now()).astimezone(UTC)
    rows = [(tenant_id, ts, e.error_type, e.detail[:MAX_DETAIL_CHARS], source) for e in errors]
    try:
        runtime.warehouse.insert("ingestion_errors", COLUMNS, rows)
    except Exception as exc:  # the caller's answer does not depend on the audit row
        log.warning(
            "could not record ingestion errors",
            extra={"tenant_id": tenant_id, "count": len(rows), "error": type(exc).__name__},
        )


def recent_errors(runtime: Runtime, tenant_id: int, limit: int) -> list[dict[str, object]]:
    """Newest first: `ts`, `error_type`, `detail`."""
    result = TenantWarehouse(runtime.warehouse, tenant_id).query(
        "SELECT ts, error_type, detail FROM ingestion_errors WHERE tenant_id = {tenant_id:UInt64} "
        "ORDER BY ts DESC LIMIT {limit:UInt32}",
        {"limit": limit},
    )
    return result.dicts()
