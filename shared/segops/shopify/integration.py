"""The tenant's Shopify integration: the webhook secret, write-only (never returned, never logged)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from segops import clock, vault
from segops.boundary import StrictTrimmedModel
from segops.http.routes import RequestContext, Router
from segops.runtime import Runtime
from segops.store import keys
from segops.tenancy import service

router = Router(
    "/api/tenants/<int:tenant_id>/integrations/shopify", auth=("jwt",), role="admin", tenant_from_path="tenant_id"
)


class ShopifyIntegration(BaseModel):
    """Stored in the control plane: the app's API secret key (HMAC needs the secret itself), sealed
    under the Shopify secrets key (`segops.vault`)."""

    sealed_secret: str
    updated_at: datetime = Field(default_factory=clock.now)
    updated_by: int | None = None


class ShopifySecretIn(StrictTrimmedModel):
    secret: str = Field(min_length=8, max_length=256, description="Shopify app API secret key (write-only).")


class ShopifyIntegrationOut(BaseModel):
    secret_set: bool
    webhook_path: str
    updated_at: datetime | None


def load_integration(runtime: Runtime, tenant_id: int) -> ShopifyIntegration | None:
    return runtime.documents.load(keys.shopify_integration_key(tenant_id), ShopifyIntegration)


def webhook_secret(runtime: Runtime, integration: ShopifyIntegration) -> str:
    return vault.unseal(runtime.shopify_secrets_key, integration.sealed_secret)


def webhook_path(slug: str) -> str:
    return f"/api/ingestion/shopify/{slug}/"


def _out(runtime: Runtime, tenant_id: int, found: ShopifyIntegration | None) -> ShopifyIntegrationOut:
    slug = service.tenant(runtime, tenant_id).slug
    return ShopifyIntegrationOut(
        secret_set=found is not None, webhook_path=webhook_path(slug), updated_at=found.updated_at if found else None
    )


@router.put("/", body=ShopifySecretIn, response=ShopifyIntegrationOut)
def put_shopify(ctx: RequestContext) -> ShopifyIntegrationOut:
    """Set or rotate the Shopify webhook secret (admin); the secret is never returned."""
    body: ShopifySecretIn = ctx.body
    user_id = ctx.principal.user_id if ctx.principal is not None else None
    sealed = vault.seal(ctx.runtime.shopify_secrets_key, body.secret)
    record = ShopifyIntegration(sealed_secret=sealed, updated_by=user_id)
    ctx.runtime.documents.save(keys.shopify_integration_key(ctx.tenant_id), record)
    return _out(ctx.runtime, ctx.tenant_id, record)


@router.get("/", response=ShopifyIntegrationOut)
def get_shopify(ctx: RequestContext) -> ShopifyIntegrationOut:
    """Whether a Shopify secret is set, and the webhook path to register in Shopify."""
    return _out(ctx.runtime, ctx.tenant_id, load_integration(ctx.runtime, ctx.tenant_id))


@router.delete("/", status=204)
def delete_shopify(ctx: RequestContext) -> None:
    """Remove the secret: webhooks for this tenant are refused (401) from now on."""
    ctx.runtime.documents.delete(keys.shopify_integration_key(ctx.tenant_id))
