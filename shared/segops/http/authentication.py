"""Who is calling, for which tenant, with which role — resolved once per request from its credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segops.auth import sessions
from segops.auth.principal import Principal
from segops.auth.roles import Role, at_least
from segops.errors import Forbidden, NotFound, Unauthorized, invalid
from segops.http.credentials import credentials
from segops.http.routes import AuthKind, RequestContext
from segops.ids import parse_id
from segops.tenancy import service
from segops.tenancy.models import Tenant

_AUTH_NAMES: dict[AuthKind, str] = {
    "jwt": "bearer tokens",
    "api_key": "API keys",
    "write_key": "HTTP Basic write keys",
}


def _tenant_reference(ctx: RequestContext, body: Any) -> str | None:
    route = ctx.route
    if route.tenant_from_path:
        return str(ctx.path_params[route.tenant_from_path])
    if isinstance(body, dict) and body.get("tenant") is not None:
        return str(body["tenant"])
    value = ctx.request.args.get("tenant") or ctx.request.headers.get("X-SegOps-Tenant")
    return value or None


def _resolve_tenant_id(ctx: RequestContext, reference: str) -> int | None:
    if not reference.isascii():
        raise invalid("/tenant", "must be a tenant id (ASCII digits) or slug")
    tenant_id = parse_id(reference)
    if tenant_id is not None:
        return tenant_id
    found = service.tenant_by_slug(ctx.runtime, reference.lower())
    return found.id if found else None


def _holding_object(
    ctx: RequestContext, locate: tuple[str, Callable[[int, int], str]], memberships: list[tuple[Tenant, Role]]
) -> list[tuple[Tenant, Role]]:
    """The caller's tenants that hold the object named in the path (none or one: ids are global)."""
    param, key = locate
    object_id = int(ctx.path_params[param])
    return [(t, role) for t, role in memberships if ctx.runtime.store.get(key(t.id, object_id)) is not None]


def _check_publishable(ctx: RequestContext, allowed_origins: list[str]) -> None:
    """A publishable key is public (it sits in page source): it may only send events, and only from
    a page on one of its origins (browsers set `Origin` themselves; scripts cannot forge it)."""
    if not ctx.route.browser:
        raise Forbidden("a publishable key (pk_live_) can only send events; use a secret key (sk_live_) here")
    origin = ctx.request.headers.get("Origin", "")
    if origin not in allowed_origins:
        raise Forbidden(
            "this publishable key does not allow this origin",
            {"origin": origin or None, "hint": "add the page's origin to the key's allowed_origins"},
        )


def authenticate(ctx: RequestContext, body: Any) -> Principal:
    """`body` is the decoded JSON body, which may name the tenant (`tenant`)."""
    route = ctx.route
    kind, secret = credentials(ctx)
    if kind not in route.auth:
        raise Unauthorized(f"this endpoint does not accept {_AUTH_NAMES[kind]}")
    reference = _tenant_reference(ctx, body)
    tenant_id = _resolve_tenant_id(ctx, reference) if reference is not None else None
    if reference is not None and tenant_id is None:
        raise NotFound("tenant not found")

    if kind in ("api_key", "write_key"):
        key = service.resolve_api_key(ctx.runtime, secret)
        if tenant_id is not None and tenant_id != key.tenant_id:
            raise NotFound("tenant not found")
        if key.kind == "publishable":
            _check_publishable(ctx, key.allowed_origins)
            principal = Principal("api_key", None, key.id, key.tenant_id, key.role, tuple(key.allowed_origins))
        else:
            principal = Principal("api_key", None, key.id, key.tenant_id, key.role)
    else:
        user_id = sessions.verify_access(ctx.runtime, secret).user_id
        if tenant_id is None and route.role is not None:
            memberships = service.user_tenants(ctx.runtime, user_id)
            if len(memberships) > 1 and route.tenant_from_object is not None:
                memberships = _holding_object(ctx, route.tenant_from_object, memberships)
            if len(memberships) != 1:
                if not memberships:
                    raise NotFound("not found" if route.tenant_from_object else "you belong to no tenant")
                raise invalid(
                    "/tenant", "required: you belong to several tenants (query, body or X-SegOps-Tenant)", "missing"
                )
            tenant_id = memberships[0][0].id
        role: Role | None = None
        if tenant_id is not None:
            link = service.membership(ctx.runtime, tenant_id, user_id)
            if link is None:
                raise NotFound("tenant not found")
            role = link.role
        principal = Principal("user", user_id, None, tenant_id, role)
    return principal


def authorize(ctx: RequestContext, principal: Principal) -> None:
    """403 unless the caller's role reaches the route's. Checked after the call is admitted by the
    rate limits (and so metered): a refused call costs its bucket a token like any other."""
    route = ctx.route
    if route.role is not None:
        assert principal.role is not None
        if not at_least(principal.role, route.role):
            raise Forbidden(f"this action needs the {route.role} role", {"role": principal.role})
