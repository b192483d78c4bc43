"""Routers carry the defaults their routes share; a route overrides only what differs."""

from __future__ import annotations

import pytest
from segops.http.routes import RequestContext, Router


def _handler(ctx: RequestContext) -> None:
    """Summary line.

    Details."""


def test_routes_inherit_the_router_prefix_and_defaults() -> None:
    router = Router("/api/things/<int:tenant_id>", auth=("jwt",), role="admin", tenant_from_path="tenant_id")
    router.get("/")(_handler)
    router.post("/<int:thing_id>/", role="owner", status=201)(_handler)
    router.delete("/<int:thing_id>/", auth=(), role=None)(_handler)
    listed, created, deleted = router.routes
    assert (listed.method, listed.path, listed.auth, listed.role) == (
        "GET",
        "/api/things/<int:tenant_id>/",
        ("jwt",),
        "admin",
    )
    assert listed.tenant_from_path == "tenant_id" and listed.summary == "Summary line."
    assert (created.path, created.auth, created.role, created.status) == (
        "/api/things/<int:tenant_id>/<int:thing_id>/",
        ("jwt",),
        "owner",
        201,
    )
    # `role=None` is an override of its own (no tenant role needed), not "use the router's"
    assert (deleted.auth, deleted.role) == ((), None)


def test_the_default_router_accepts_both_credentials_from_viewers_up() -> None:
    router = Router()
    router.get("/x/")(_handler)
    [route] = router.routes
    assert (route.path, route.auth, route.role, route.tenant_from_path) == ("/x/", ("jwt", "api_key"), "viewer", None)


def test_a_tenant_path_parameter_must_be_in_the_path() -> None:
    router = Router("/api/things", tenant_from_path="tenant_id")
    with pytest.raises(ValueError, match="tenant_id"):
        router.get("/")(_handler)
