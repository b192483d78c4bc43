"""The tenant-secret interface and the secrets' names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# Each kind is read by different functions (the manifest's `tenant_secrets`, granted per kind).
SecretKind = Literal["connector", "shopify"]


@dataclass(frozen=True)
class SecretName:
    """One tenant credential. Its id starts with the deployment prefix and then the tenant
    (`segops-t42-connector-7`), so a tenant's secrets list together and IAM conditions can match
    the kind right after the tenant (terraform/iam.tf)."""

    tenant_id: int
    kind: SecretKind
    object_id: int | None = None

    def secret_id(self, prefix: str) -> str:
        suffix = "" if self.object_id is None else f"-{self.object_id}"
        return f"{prefix}-t{self.tenant_id}-{self.kind}{suffix}"


def connector_api_key(tenant_id: int, connector_id: int) -> SecretName:
    return SecretName(tenant_id, "connector", connector_id)


def shopify_webhook_secret(tenant_id: int) -> SecretName:
    return SecretName(tenant_id, "shopify")


class TenantSecrets(Protocol):
    def put(self, name: SecretName, value: str) -> None:
        """Store `value` as the secret's current value (a new version; earlier ones are destroyed)."""

    def get(self, name: SecretName) -> str | None:
        """The current value, None when the secret does not exist."""

    def delete(self, name: SecretName) -> None:
        """Destroy the secret and every version of it; nothing happens when it does not exist."""
