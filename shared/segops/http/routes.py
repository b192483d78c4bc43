"""Routes declared as data, grouped by routers that carry their shared defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from flask import Request
from pydantic import BaseModel

from segops.auth.principal import Principal
from segops.auth.roles import Role
from segops.runtime import Runtime

# `write_key`: an API key sent as the HTTP Basic user name, as Segment's clients send their write key.
AuthKind = Literal["jwt", "api_key", "write_key"]
Handler = Callable[["RequestContext"], Any]


class _Inherit(Enum):
    # `role=None` is meaningful (no tenant role needed), so "use the router's role" needs its own value.
    ROUTER = "router"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
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
    also_status: tuple[int, ...] = ()
    # (path parameter, store key of that object in a tenant): a JWT user of several tenants who
    # names no tenant gets the one holding the object (ids are global, so at most one does).
    tenant_from_object: tuple[str, Callable[[int, int], str]] | None = None
    # Event ingestion from web pages: publishable keys are accepted (only here), CORS is answered.
    browser: bool = False
    # Other media types the success response may have (a CSV form), documented as text.
    also_media: tuple[str, ...] = ()
    # The WWW-Authenticate challenge of a 401 on a route that authenticates by other means than `auth`
    # (a webhook's signature); None: the challenges of `auth`.
    challenge: str | None = None


@dataclass
class RequestContext:
    request: Request
    runtime: Runtime
    route: Route
    path_params: dict[str, Any]
    request_id: str
    body: Any = None
    query: Any = None
    principal: Principal | None = None
    # The decoded body once `segops.http.requests.read_body` has read it (None: not read yet).
    raw_body: bytes | None = None
    # Sent with whatever the request gets, error or not (the rate limit's `RateLimit-*` fields).
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def tenant_id(self) -> int:
        assert self.principal is not None and self.principal.tenant_id is not None
        return self.principal.tenant_id


class Router:
    """A group of routes sharing a path prefix and defaults (who may call them, from which tenant).

    `auth=()` with `role=None` makes the routes public; `tenant_from_path` names the path parameter
    that selects the tenant (its routes are then scoped to that tenant, whatever the credential).
    `browser`: event-ingestion routes web pages may call (publishable keys, CORS; `segops.http.cors`)."""

    def __init__(
        self,
        prefix: str = "",
        *,
        auth: tuple[AuthKind, ...] = ("jwt", "api_key"),
        role: Role | None = "viewer",
        tenant_from_path: str | None = None,
        browser: bool = False,
    ) -> None:
        self.prefix = prefix
        self.auth = auth
        self.role = role
        self.tenant_from_path = tenant_from_path
        self.browser = browser
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        auth: tuple[AuthKind, ...] | None = None,
        role: Role | _Inherit | None = _Inherit.ROUTER,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        raw_body: bool = False,
        stream_body: bool = False,
        doc_body: type[BaseModel] | None = None,
        also_status: tuple[int, ...] = (),
        tenant_from_object: tuple[str, Callable[[int, int], str]] | None = None,
        browser: bool | None = None,
        also_media: tuple[str, ...] = (),
        challenge: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """`path` is relative to the router's prefix; `auth`/`role` override the router's defaults
        (`role=None`: any authenticated caller, no tenant role needed).
        `stream_body`: the framework authenticates first and leaves the body unread; the handler reads
        it with `read_body` (its own size limit, and request-level errors it can attribute to the tenant).
        `doc_body` documents such a body in OpenAPI. `also_status`: other statuses whose body is the
        `response` model too, not the error shape (health's 503). `tenant_from_object`: (path parameter,
        store key of that object in a tenant) resolves the tenant of a JWT user of several tenants
        who names none to the one holding the object. `browser`: overrides the router's
        (an ingestion route web pages may call: publishable keys, CORS; `segops.http.cors`).
        `also_media`: media types the success response may have besides JSON (`text/csv`)."""

        full_path = self.prefix + path
        if self.tenant_from_path and f"{self.tenant_from_path}>" not in full_path:
            raise ValueError(f"{full_path} has no <{self.tenant_from_path}> parameter to take the tenant from")

        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method,
                    full_path,
                    handler,
                    self.auth if auth is None else auth,
                    self.role if isinstance(role, _Inherit) else role,
                    body,
                    query,
                    response,
                    status,
                    summary or _first_line(handler.__doc__),
                    raw_body,
                    self.tenant_from_path,
                    stream_body,
                    doc_body,
                    also_status,
                    tenant_from_object,
                    self.browser if browser is None else browser,
                    also_media,
                    challenge,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""
