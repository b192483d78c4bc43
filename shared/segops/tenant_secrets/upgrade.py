"""Moving the credentials earlier versions kept in the control-plane store into the configured
tenant-secret backend (`python -m segops.ops secrets migrate`, docs/deploy.md).

Earlier versions kept a connector's API key in `tenants/<t>/connector-secrets/<c>` (`sealed_api_key`,
Fernet under the connector sealing key; before that `api_key` in plaintext) and the Shopify webhook
secret inside the integration document (`sealed_secret` under the Shopify sealing key; before that
`secret`). Each is moved once: written to the backend unless the backend already holds that
credential, read back, and only then removed from the store by a write conditional on the document's
generation. A run that dies anywhere leaves either the earlier copy (moved by the next run) or the
backend's copy alone, never neither; running it again, or twice at once, writes nothing twice.

Run it after the new version is deployed: from then on only the new code sets credentials, so a
value already in the backend is the newer one (set through the API since) and is kept.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from segops import vault
from segops.store import keys
from segops.store.base import Document, GenerationMismatch, Store
from segops.store.documents import cas_backoff
from segops.tenant_secrets.base import SecretKind, SecretName, TenantSecrets, connector_api_key, shopify_webhook_secret

log = logging.getLogger("segops.tenant_secrets.upgrade")

# What each kind's earlier documents held: (sealed field, plaintext field of the versions before sealing).
_FIELDS: dict[SecretKind, tuple[str, str]] = {
    "connector": ("sealed_api_key", "api_key"),
    "shopify": ("sealed_secret", "secret"),
}
# A document rewritten under a run (by another run, or an API call) is read again; a few times suffice.
_ATTEMPTS = 5

# moved: the backend holds the earlier value now. superseded: the backend already held another
# value, set since the upgrade, which is kept. orphaned: the connector was deleted, its key discarded.
# failed: the earlier value does not open with the configured sealing keys; left where it is.
Outcome = Literal["moved", "superseded", "orphaned", "failed"]


@dataclass(frozen=True)
class EarlierSecret:
    """A credential where an earlier version kept it: the document holding it, and its name now."""

    key: str
    name: SecretName


@dataclass
class UpgradeReport:
    dry_run: bool
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    failures: list[dict[str, object]] = field(default_factory=list)


class _Failed(Exception):
    pass


def earlier_secrets(store: Store, tenant_id: int | None = None) -> Iterator[EarlierSecret]:
    """Every document that may hold an earlier version's credential (the tenant's, or everyone's)."""
    if tenant_id is not None:
        found = [*store.list(keys.earlier_connector_secrets_prefix(tenant_id)), keys.shopify_integration_key(tenant_id)]
    else:
        # One listing of the tenants' documents (an operator command, not a hot path).
        found = store.list(keys.TENANTS_PREFIX)
    for key in found:
        holder = keys.earlier_secret_holder(key)
        if holder is not None:
            tenant, connector = holder
            name = shopify_webhook_secret(tenant) if connector is None else connector_api_key(tenant, connector)
            yield EarlierSecret(key, name)


def migrate(
    store: Store,
    secrets: TenantSecrets,
    sealing_keys: dict[SecretKind, str],
    tenant_id: int | None = None,
    dry_run: bool = False,
) -> UpgradeReport:
    """Move every earlier credential (of the tenant, or of every tenant) into `secrets`, each once."""
    report = UpgradeReport(dry_run)
    for earlier in earlier_secrets(store, tenant_id):
        try:
            outcome = _move(store, secrets, sealing_keys, earlier, dry_run)
        except _Failed as exc:
            report.outcomes["failed"] += 1
            report.failures.append(_describe(earlier.name) | {"reason": str(exc)})
            continue
        if outcome is not None:
            report.outcomes[outcome] += 1
            if not dry_run:
                log.info("tenant secret upgraded", extra=_describe(earlier.name) | {"outcome": outcome})
    return report


def _describe(name: SecretName) -> dict[str, object]:
    """Which credential, never its value: for the report and the log line."""
    return {"tenant_id": name.tenant_id, "kind": name.kind, "object_id": name.object_id}


def _move(
    store: Store, secrets: TenantSecrets, sealing_keys: dict[SecretKind, str], earlier: EarlierSecret, dry_run: bool
) -> Outcome | None:
    name = earlier.name
    written: str | None = None  # the value this run put into the backend, if it did
    for attempt in range(1, _ATTEMPTS + 1):
        document = store.get(earlier.key)
        if document is None or not any(f in document.body for f in _FIELDS[name.kind]):
            return None  # nothing here (any more): moved by another run, or never an earlier format
        connector = name.object_id
        if connector is not None and store.get(keys.connector_key(name.tenant_id, connector)) is None:
            # Deleted since the upgrade (the new code deletes the backend's copy only): discard.
            if not dry_run and not _remove(store, document, name.kind):
                cas_backoff(attempt)
                continue
            return "orphaned"
        value = _open(document, name.kind, sealing_keys[name.kind])
        current = secrets.get(name)
        # What this run wrote earlier is no newer than the document that replaced it since.
        outcome: Outcome = "superseded" if current is not None and current not in (value, written) else "moved"
        if dry_run:
            return outcome
        if outcome == "moved" and current != value:
            secrets.put(name, value)
            written = value
            if secrets.get(name) != value:
                raise _Failed("the backend did not return the value just written; the earlier copy is kept")
        if _remove(store, document, name.kind):
            return outcome
        cas_backoff(attempt)
    raise _Failed("the document kept changing during the move; run the command again")


def _open(document: Document, kind: SecretKind, sealing_key: str) -> str:
    sealed_field, plain_field = _FIELDS[kind]
    if sealed_field in document.body:
        try:
            return vault.unseal(sealing_key, str(document.body[sealed_field]))
        except vault.SecretUnavailable as exc:
            raise _Failed(f"{exc} (SEGOPS_{kind.upper()}_SECRETS_KEY)") from None
    return str(document.body[plain_field])


def _remove(store: Store, document: Document, kind: SecretKind) -> bool:
    """Remove the earlier copy unless the document changed since it was read: the connector's
    secrets document goes; the Shopify integration document stays, without the secret."""
    try:
        if kind == "connector":
            store.delete(document.key, if_generation=document.generation)
        else:
            kept = {k: v for k, v in document.body.items() if k not in _FIELDS[kind]}
            store.put(document.key, kept, if_generation=document.generation)
    except GenerationMismatch:
        return False
    return True
