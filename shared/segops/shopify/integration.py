"""The tenant's Shopify integration: the webhook secret, write-only (never returned, never logged)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from segops import clock
from segops.boundary import StrictTrimmedModel
from segops.http.routes import RequestContext, Router
from segops.runtime import Runtime
from segops.store import keys
from segops.tenancy import service
from segops.tenant_secrets import shopify_webhook_secret

router = Router(
    "/api/tenants/<int:tenant_id>/integrations/shopify", auth=("jwt",), role="admin", tenant_from_path="tenant_id"
)


class ShopifyIntegration(BaseModel):
    """Stored in the control plane: that the integration is set, when and by whom. The app's API
    secret key itself (HMAC needs the secret, not a hash) is a tenant secret (`segops.tenant_secrets`)."""

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


def webhook_secret(runtime: Runtime, tenant_id: int) -> str | None:
    return runtime.tenant_secrets.get(shopify_webhook_secret(tenant_id))


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
    ctx.runtime.tenant_secrets.put(shopify_webhook_secret(ctx.tenant_id), body.secret)
    record = ShopifyIntegration(updated_by=user_id)
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
    ctx.runtime.tenant_secrets.delete(shopify_webhook_secret(ctx.tenant_id))
