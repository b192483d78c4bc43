"""`GET /api/ingestion/health/`: real checks of the bus, its worker and ClickHouse."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.runtime import Runtime

router = Router("/api/ingestion", auth=(), role=None)


class Health(BaseModel):
    pubsub_topic: str
    worker: str
    clickhouse: str


def _probe(check: Callable[[], object]) -> str:
    try:
        result = check()
    except Exception as exc:  # a health check reports failures, it does not raise them
        return f"error: {type(exc).__name__}: {str(exc)[:200]}"
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
        pubsub_topic=_probe(runtime.bus.check),
        worker=_probe(runtime.bus.worker_status),
        clickhouse=_probe(lambda: _events_table(runtime)),
    )
    healthy = all(v == "ok" for v in report.model_dump().values())
    return Result(report, status=200 if healthy else 503, headers={"Cache-Control": "no-store"})
