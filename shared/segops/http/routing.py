from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from flask import Request, Response
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import Map, RequestRedirect, Rule

from segops.errors import (
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SegOpsError,
    UnsupportedMediaType,
    ValidationFailed,
)
from segops.http.ids import AsciiIntConverter
from segops.runtime import Runtime, get_runtime

log = logging.getLogger("segops.http")

AuthKind = Literal["jwt", "api_key"]
Role = Literal["viewer", "member", "admin", "owner"]


@dataclass(frozen=True)
class Result:
    """A handler result with a non-default status or headers."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[RequestContext], Any]
    auth: tuple[AuthKind, ...]
    role: Role | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    summary: str
    raw_body: bool
    tenant_from_path: str | None
    stream_body: bool = False
    doc_body: type[BaseModel] | None = None


@dataclass
class RequestContext:
    request: Request
    runtime: Runtime
    route: Route
    path_params: dict[str, Any]
    request_id: str
    body: Any = None
    query: Any = None
    principal: Any = None
    raw_body: bytes = b""

    @property
    def tenant_id(self) -> int:
        from segops.auth.principal import Principal

        assert isinstance(self.principal, Principal) and self.principal.tenant_id is not None
        return self.principal.tenant_id


class Router:
    """Routes declared as data; `HttpApp` does parsing, auth, validation and error rendering."""

    def __init__(self, tags: Iterable[str] = ()) -> None:
        self.routes: list[Route] = []
        self.tags = list(tags)

    def route(
        self,
        method: str,
        path: str,
        *,
        auth: tuple[AuthKind, ...] = ("jwt", "api_key"),
        role: Role | None = "viewer",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        raw_body: bool = False,
        tenant_from_path: str | None = None,
        stream_body: bool = False,
        doc_body: type[BaseModel] | None = None,
    ) -> Callable[[Callable[[RequestContext], Any]], Callable[[RequestContext], Any]]:
        """`stream_body`: the framework authenticates first and leaves the body unread; the handler reads
        it with `read_body` (its own size limit, and request-level errors it can attribute to the tenant).
        `doc_body` documents such a body in OpenAPI."""

        def register(handler: Callable[[RequestContext], Any]) -> Callable[[RequestContext], Any]:
            self.routes.append(
                Route(
                    method,
                    path,
                    handler,
                    auth,
                    role,
                    body,
                    query,
                    response,
                    status,
                    summary or _first_line(handler.__doc__),
                    raw_body,
                    tenant_from_path,
                    stream_body,
                    doc_body,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Callable[[RequestContext], Any]], Callable[[RequestContext], Any]]:
        return self.route("GET", path, **kw)

    def post(
        self, path: str, **kw: Any
    ) -> Callable[[Callable[[RequestContext], Any]], Callable[[RequestContext], Any]]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Callable[[RequestContext], Any]], Callable[[RequestContext], Any]]:
        return self.route("PUT", path, **kw)

    def patch(
        self, path: str, **kw: Any
    ) -> Callable[[Callable[[RequestContext], Any]], Callable[[RequestContext], Any]]:
        return self.route("PATCH", path, **kw)

    def delete(
        self, path: str, **kw: Any
    ) -> Callable[[Callable[[RequestContext], Any]], Callable[[RequestContext], Any]]:
        return self.route("DELETE", path, **kw)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, BaseModel):
        payload = body.model_dump_json().encode()
    else:
        payload = orjson.dumps(body, default=_default)
    response = Response(payload, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def error_response(error: SegOpsError, request_id: str) -> Response:
    response = json_response(error.to_body(), error.status)
    response.headers["X-Request-Id"] = request_id
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="segops", ApiKey realm="segops"'
    return response


def json_pointer(loc: Iterable[int | str]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts) if parts else ""


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> ValidationFailed:
    errors = [
        {"pointer": json_pointer((*prefix, *_clean_loc(err["loc"]))), "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"pointer": "", "message": "invalid"}
    return ValidationFailed(f"{first['pointer'] or 'body'}: {first['message']}", {"errors": errors})


def _clean_loc(loc: Iterable[int | str]) -> list[int | str]:
    # Discriminated unions add the tag name to the location; drop it so the pointer is a real path.
    cleaned: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS):
            continue
        cleaned.append(part)
    return cleaned


_UNION_TAGS: set[str] = set()


def register_union_tags(tags: Iterable[str]) -> None:
    """Tags of discriminated unions that pydantic inserts into error locations."""
    _UNION_TAGS.update(tags)


def read_body(ctx: RequestContext, limit: int) -> bytes:
    """The raw request body, at most `limit` bytes (`PayloadTooLarge` beyond); also kept in `ctx.raw_body`."""
    request = ctx.request
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes", {"limit": limit})
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes", {"limit": limit})
    ctx.raw_body = raw
    return raw


class HttpApp:
    """One HTTP function: its routers, served through functions-framework's Flask request."""

    def __init__(self, routers: Iterable[Router], function_name: str) -> None:
        self.function_name = function_name
        self.routes: list[Route] = [r for router in routers for r in router.routes]
        self._map = Map(
            [Rule(r.path, endpoint=i, methods=[r.method]) for i, r in enumerate(self.routes)],
            strict_slashes=True,
            merge_slashes=False,
            converters={"int": AsciiIntConverter},
        )

    def handle(self, request: Request) -> Response:
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        started = time.perf_counter()
        ctx: RequestContext | None = None
        try:
            adapter = self._map.bind("localhost", path_info=request.path)
            try:
                index, path_params = adapter.match(method=request.method)
            except WerkzeugMethodNotAllowed as exc:
                raise MethodNotAllowed(
                    f"{request.method} is not allowed here", {"allowed": sorted(exc.valid_methods or [])}
                ) from None
            except WerkzeugNotFound:
                raise NotFound(f"no endpoint {request.path}") from None
            except RequestRedirect as exc:
                # Only the trailing slash differs. Paths are exact (a redirected POST loses its body).
                suggestion = urlsplit(exc.new_url).path
                raise NotFound(f"no endpoint {request.path}", {"did_you_mean": suggestion}) from None
            route = self.routes[index]
            ctx = RequestContext(request, get_runtime(), route, dict(path_params), request_id)
            result = self._dispatch(ctx)
            response = self._render(route, result)
        except SegOpsError as error:
            response = error_response(error, request_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "function": self.function_name})
            response = error_response(SegOpsError("internal error"), request_id)
        response.headers["X-Request-Id"] = request_id
        self._log(request, response, ctx, started, request_id)
        return response

    def _dispatch(self, ctx: RequestContext) -> Any:
        from segops.auth.principal import authenticate

        route = ctx.route
        reads_body = route.method in ("POST", "PUT", "PATCH") and not route.stream_body
        body_obj = self._read_body(ctx) if reads_body else None
        if route.role is not None or route.auth:
            ctx.principal = authenticate(ctx, body_obj)
        if route.query is not None:
            query = {k: v for k, v in ctx.request.args.items() if k != "tenant"}
            try:
                ctx.query = route.query.model_validate(query)
            except ValidationError as exc:
                raise validation_error(exc, ("query",)) from exc
        if route.body is not None:
            if isinstance(body_obj, dict) and "tenant" not in route.body.model_fields:
                body_obj.pop("tenant", None)
            try:
                ctx.body = route.body.model_validate(body_obj)
            except ValidationError as exc:
                raise validation_error(exc) from exc
        elif not route.raw_body:
            ctx.body = body_obj
        return route.handler(ctx)

    def _read_body(self, ctx: RequestContext) -> Any:
        request = ctx.request
        raw = read_body(ctx, ctx.runtime.settings.max_body_bytes)
        if ctx.route.raw_body:
            return None
        if not raw.strip():
            if ctx.route.body is None:
                return None
            raise ValidationFailed(
                "request body must be a JSON object", {"errors": [{"pointer": "", "message": "empty body"}]}
            )
        mimetype = request.mimetype or ""
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise UnsupportedMediaType("Content-Type must be application/json", {"content_type": mimetype})
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed("body is not valid JSON", {"position": exc.pos}) from None

    @staticmethod
    def _render(route: Route, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, Result):
            return json_response(result.body, result.status, result.headers)
        if result is None and route.status == 204:
            return Response(status=204)
        return json_response(result, route.status)

    def _log(
        self, request: Request, response: Response, ctx: RequestContext | None, started: float, request_id: str
    ) -> None:
        tenant = getattr(ctx.principal, "tenant_id", None) if ctx is not None else None
        log.info(
            "request",
            extra={
                "function": self.function_name,
                "request_id": request_id,
                "tenant_id": tenant,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )
