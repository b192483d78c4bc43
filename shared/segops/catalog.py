"""Which routers each HTTP function serves. Function adapters and the OpenAPI document read this."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from segops.http.app import HttpApp
from segops.http.routes import RequestContext, Router

# function name → "module:attribute" of its routers (imported lazily: a function loads only its own code)
HTTP_FUNCTIONS: dict[str, list[str]] = {
    "api": [
        "segops.tenancy.api:auth_router",
        "segops.tenancy.api:tenants_router",
        "segops.tenancy.api:tenant_router",
        "segops.tenancy.api:invitations_router",
        "segops.tenancy.api:keys_router",
        "segops.limits.api:router",
        "segops.health:router",
        "segops.catalog:openapi_router",
        "segops.connectors.api:router",
        "segops.ingestion.api:stats_router",
        "segops.shopify.integration:router",
        "segops.compute.api:router",
        "segops.ai.api:router",
        "segops.lookalike.api:router",
        "segops.segments.api:router",
        "segops.exports.api:router",
        "segops.metering.api:router",
    ],
    "track": ["segops.ingestion.api:track_router"],
    "track_batch": ["segops.ingestion.api:batch_router"],
    "segment_compat": ["segops.ingestion.api:segment_router"],
    "shopify_webhook": ["segops.shopify.webhook:router"],
    "membership": ["segops.membership.api:router"],
    "sandbox": ["segops.sandbox.api:router"],
}


def routers(function: str) -> list[Router]:
    found = []
    for target in HTTP_FUNCTIONS[function]:
        module, _, attribute = target.partition(":")
        router = getattr(import_module(module), attribute)
        assert isinstance(router, Router)
        found.append(router)
    return found


@cache
def http_app(function: str) -> HttpApp:
    return HttpApp(routers(function), function)


openapi_router = Router("/api", auth=(), role=None)


@cache
def openapi_document() -> bytes:
    import orjson

    from segops.http.openapi import build_openapi

    return orjson.dumps(build_openapi({name: routers(name) for name in HTTP_FUNCTIONS}))


@openapi_router.get("/openapi.json")
def openapi(ctx: RequestContext) -> object:
    """OpenAPI 3.1 for every endpoint of every function."""
    from flask import Response

    return Response(openapi_document(), mimetype="application/json")
