"""One structured log line per request."""

from __future__ import annotations

import logging
import time

from flask import Request, Response

from segops.http.routes import RequestContext

log = logging.getLogger("segops.http")


def log_request(
    function: str, request: Request, response: Response, ctx: RequestContext | None, started: float, request_id: str
) -> None:
    """`started` is the `time.perf_counter()` at arrival; the tenant is known once the caller was authenticated."""
    principal = ctx.principal if ctx is not None else None
    # A `<token>` in the path is a bearer secret (an invitation link): log the route, not the value.
    path = ctx.route.path if ctx is not None and "<token>" in ctx.route.path else request.path
    log.info(
        "request",
        extra={
            "function": function,
            "request_id": request_id,
            "tenant_id": principal.tenant_id if principal is not None else None,
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    )
