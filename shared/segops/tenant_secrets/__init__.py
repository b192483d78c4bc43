"""Tenant secrets: connector API keys and Shopify webhook secrets, one named secret per credential.

Two backends behind one interface (`base.TenantSecrets`): GCP Secret Manager in production
(`secret_manager`), and the sealed local equivalent for `make dev` and tests (`sealed`). docs/security.md.
"""

from segops.tenant_secrets.base import SecretName, TenantSecrets, connector_api_key, shopify_webhook_secret

__all__ = ["SecretName", "TenantSecrets", "connector_api_key", "shopify_webhook_secret"]
