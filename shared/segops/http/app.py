"""One HTTP function: match the route, authenticate, parse, call the handler, render — one error shape."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Request, Response
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import Map, MapAdapter, RequestRedirect, Rule

from segops.errors import MethodNotAllowed, NotFound, SegOpsError
from segops.http import cors
from segops.http.access_log import log_request
from segops.http.authentication import authenticate, authorize
from segops.http.converters import CONVERTERS
from segops.http.outages import as_outage, as_too_expensive
from segops.http.requests import parse_body, parse_query, read_json
from segops.http.responses import error_response, render
from segops.http.routes import RequestContext, Route, Router
from segops.limits import rates
from segops.manifest import HttpTrigger, load_manifest
from segops.metering.meter import meter_for
from segops.runtime import get_runtime

log = logging.getLogger("segops.http")


class HttpApp:
    """One HTTP function: its routers, served through functions-framework's Flask request."""

    def __init__(self, routers: Iterable[Router], function_name: str) -> None:
        self.function_name = function_name
        self.routes: list[Route] = [r for router in routers for r in router.routes]
        self._map = Map(
            [Rule(r.path, endpoint=i, methods=[r.method]) for i, r in enumerate(self.routes)],
            strict_slashes=True,
            merge_slashes=False,
            converters=CONVERTERS,
        )

    def handle(self, request: Request) -> Response:
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        started = time.perf_counter()
        ctx: RequestContext | None = None
        try:
            if request.method == "OPTIONS":
                return self._preflight(request, request_id)
            route, path_params = self._match(request)
            ctx = RequestContext(request, get_runtime(), route, path_params, request_id)
            response = render(self._dispatch(ctx), route.status)
        except SegOpsError as error:
            failed = ctx.route if ctx is not None else None
            auth, challenge = (failed.auth, failed.challenge) if failed else ((), None)
            response = error_response(error, request_id, auth, challenge)
        except Exception as exc:
            outage = as_outage(exc)
            over = as_too_expensive(exc) if outage is None else None
            if over is not None:
                log.warning("over its bounds", extra={"request_id": request_id, "function": self.function_name})
                response = error_response(over, request_id)
            elif outage is None:
                log.exception("unhandled error", extra={"request_id": request_id, "function": self.function_name})
                response = error_response(SegOpsError("internal error"), request_id)
            else:
                log.warning(
                    "backend unavailable",
                    exc_info=True,
                    extra={"request_id": request_id, "function": self.function_name},
                )
                response = error_response(outage, request_id)
        response.headers["X-Request-Id"] = request_id
        # Answers are per caller (tokens, keys, a tenant's data): no shared or browser cache keeps one,
        # unless a route says otherwise.
        response.headers.setdefault("Cache-Control", "no-store")
        if ctx is not None:
            response.headers.update(ctx.response_headers)
        if ctx is not None and ctx.route.browser:
            cors.allow_response(request, response, ctx.principal)
        log_request(self.function_name, request, response, ctx, started, request_id)
        # A 429 (a rate limit or quota refusing the call) is not a billable call: it costs nothing.
        if (
            ctx is not None
            and ctx.principal is not None
            and ctx.principal.tenant_id is not None
            and response.status_code != 429
        ):
            call = f"{self.function_name}:{response.status_code // 100}xx"
            meter_for(ctx.runtime).count(ctx.principal.tenant_id, "api_calls", 1, call)
        return response

    def _preflight(self, request: Request, request_id: str) -> Response:
        """CORS preflight: answered for browser routes only (others: 405, no CORS at all)."""
        adapter: MapAdapter = self._map.bind("localhost", path_info=request.path)
        try:
            index, _ = adapter.match(method="POST")
        except (WerkzeugMethodNotAllowed, WerkzeugNotFound, RequestRedirect):
            index = None
        if index is None or not self.routes[index].browser:
            return error_response(MethodNotAllowed("OPTIONS is not allowed here", {"allowed": []}), request_id)
        response = cors.preflight(request)
        response.headers["X-Request-Id"] = request_id
        return response

    def _match(self, request: Request) -> tuple[Route, dict[str, Any]]:
        adapter = self._map.bind("localhost", path_info=request.path)
        try:
            index, path_params = adapter.match(method=request.method)
        except WerkzeugMethodNotAllowed as exc:
            raise MethodNotAllowed(
                f"{request.method} is not allowed here", {"allowed": sorted(exc.valid_methods or [])}
            ) from None
        except WerkzeugNotFound:
            suggestion = self._other_slash(adapter, request.path, request.method)
            raise NotFound(f"no endpoint {request.path}", {"did_you_mean": suggestion} if suggestion else {}) from None
        except RequestRedirect as exc:
            # Only the trailing slash differs. Paths are exact (a redirected POST loses its body).
            suggestion = urlsplit(exc.new_url).path
            raise NotFound(f"no endpoint {request.path}", {"did_you_mean": suggestion}) from None
        return self.routes[index], dict(path_params)

    @staticmethod
    def _other_slash(adapter: MapAdapter, path: str, method: str) -> str | None:
        """`path` with its trailing slash removed when that is a route of this function (werkzeug only
        suggests adding one), or added when that is a path of its own function in the manifest
        (`/api/ingestion/track` reaches the `api` function; `/api/ingestion/track/` is `track`'s)."""
        if path.endswith("/") and len(path) > 1:
            try:
                adapter.match(path_info=path[:-1], method=method)
            except (WerkzeugNotFound, WerkzeugMethodNotAllowed, RequestRedirect):
                return None
            return path[:-1]
        with contextlib.suppress(OSError, ValueError):
            for spec in load_manifest().http_functions():
                assert isinstance(spec.trigger, HttpTrigger)
                if path + "/" in spec.trigger.routes:  # an exact route: the whole path is that function's
                    return path + "/"
        return None

    @staticmethod
    def _dispatch(ctx: RequestContext) -> Any:
        route = ctx.route
        reads_body = route.method in ("POST", "PUT", "PATCH") and not route.stream_body
        authenticated = route.role is not None or bool(route.auth)
        try:
            body = read_json(ctx) if reads_body else None
        except SegOpsError:
            # A body refused before it could name its tenant (413, 415, not JSON) is still a call of
            # the caller its headers name: admitted by the rate limits (a refusal costs a token) and metered.
            if authenticated:
                with contextlib.suppress(SegOpsError):
                    ctx.principal = authenticate(ctx, None)
                    _admit(ctx)
            raise
        if authenticated:
            ctx.principal = authenticate(ctx, body)
            _admit(ctx)
            authorize(ctx, ctx.principal)
        parse_query(ctx)
        parse_body(ctx, body)
        return route.handler(ctx)


def _admit(ctx: RequestContext) -> None:
    """Take the caller's rate-limit tokens (429 `rate_limited` past them) and say what is left."""
    assert ctx.principal is not None
    admission = rates.admit(ctx.runtime, ctx.principal)
    if admission is not None:
        ctx.response_headers.update(admission.headers())
