"""`GET /api/ingestion/health/`: real checks of the bus, its worker and ClickHouse."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import BaseModel

from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.runtime import Runtime

router = Router("/api/ingestion", auth=(), role=None)
log = logging.getLogger("segops.health")


class Health(BaseModel):
    pubsub_topic: str
    worker: str
    clickhouse: str


def _probe(name: str, check: Callable[[], object], request_id: str) -> str:
    try:
        result = check()
    except Exception:  # a health check reports failures, it does not raise them
        # The endpoint is unauthenticated: exception text (hosts, SQL, credentials in URLs) goes to
        # the logs only; the caller gets the request id to find it there.
        log.exception("health check failed", extra={"dependency": name, "request_id": request_id})
        return f"error (request {request_id})"
    return result if isinstance(result, str) else "ok"


def _events_table(runtime: Runtime) -> str:
    present = runtime.warehouse.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        {"t": "events"},
    ).scalar()
    return "ok" if present == 1 else "events table missing"


@router.get("/health/", response=Health, also_status=(503,))
def health(ctx: RequestContext) -> Result:
    """`ok` per dependency, or the error; 503 when any is not ok."""
    runtime = ctx.runtime
    report = Health(
        pubsub_topic=_probe("pubsub_topic", runtime.bus.check, ctx.request_id),
        worker=_probe("worker", runtime.bus.worker_status, ctx.request_id),
        clickhouse=_probe("clickhouse", lambda: _events_table(runtime), ctx.request_id),
    )
    healthy = all(v == "ok" for v in report.model_dump().values())
    return Result(report, status=200 if healthy else 503, headers={"Cache-Control": "no-store"})
