"""Connector resource operations. Credentials live in their own document and never leave it except
to authenticate a platform call."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from segops import clock
from segops.connectors import models as m
from segops.connectors.egress import PLATFORM_HOSTS, EgressPolicy, EgressRefused
from segops.connectors.ledger import ConnectorLedger
from segops.connectors.sync import request_full_sync
from segops.errors import NotFound, invalid
from segops.http.pointers import validation_error
from segops.limits import quotas
from segops.runtime import Runtime
from segops.store import keys
from segops.tenant_secrets import connector_api_key

_URL_FIELDS = ("base_url", "rest_endpoint")


def validate_config(runtime: Runtime, connector_type: str, config: dict[str, Any]) -> dict[str, Any]:
    model = m.CONFIG_MODELS[connector_type]
    try:
        parsed = model.model_validate({**config, "type": connector_type})
    except ValidationError as exc:
        raise validation_error(exc, ("config",)) from exc
    settings = runtime.settings
    if connector_type in PLATFORM_HOSTS:
        # Checked again, with DNS, on every request (`segops.connectors.egress`); here for a clear 400.
        egress = EgressPolicy.for_platform(
            connector_type, settings.connector_extra_hosts, settings.connector_test_networks
        )
        for name in _URL_FIELDS:
            url = getattr(parsed, name, None)
            if url is None:
                continue
            try:
                egress.check_url(str(url))
            except EgressRefused as exc:
                _bad_url(name, str(exc))
            # The platform's base only: config is shown in every answer and is not sealed, so a user
            # name or password has no place in it; nor has a query or fragment.
            parts = urlsplit(str(url))
            if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
                _bad_url(name, "must be the platform's base URL, without credentials, query or fragment")
    if isinstance(parsed, m.TalonOneConfig) and parsed.audience_id is None and parsed.audience_name is None:
        raise invalid("/config/audience_id", "a talonone connector needs audience_id or audience_name", "missing")
    dumped = parsed.model_dump(mode="json")
    dumped.pop("type")
    return dumped


def _bad_url(name: str, message: str) -> None:
    raise invalid(f"/config/{name}", message)


def _require_segment(runtime: Runtime, tenant_id: int, segment_id: int) -> None:
    if runtime.store.get(keys.segment_key(tenant_id, segment_id)) is None:
        raise invalid("/segment_id", "no such segment in this tenant")


def _require_credentials(connector: m.Connector) -> None:
    if connector.type != "file" and not connector.credentials_set:
        raise invalid("/credentials/api_key", f"required for a {connector.type} connector", "missing")


def get(runtime: Runtime, tenant_id: int, connector_id: int) -> m.Connector:
    found = runtime.documents.load(keys.connector_key(tenant_id, connector_id), m.Connector)
    if found is None:
        raise NotFound("connector not found")
    return found


def list_connectors(runtime: Runtime, tenant_id: int) -> list[m.Connector]:
    return sorted(runtime.documents.list(keys.connectors_prefix(tenant_id), m.Connector), key=lambda c: c.id)


def create(
    runtime: Runtime,
    tenant_id: int,
    name: str,
    connector_type: m.ConnectorType,
    segment_id: int,
    active: bool,
    config: dict[str, Any],
    credentials: m.Credentials | None,
) -> m.Connector:
    _require_segment(runtime, tenant_id, segment_id)
    clean = validate_config(runtime, connector_type, config)
    quotas.check_room(runtime, tenant_id, "connectors", len(runtime.store.list(keys.connectors_prefix(tenant_id))))
    connector = m.Connector(
        id=runtime.documents.new_id("connectors"),
        tenant=tenant_id,
        name=name,
        type=connector_type,
        segment_id=segment_id,
        active=False,
        config=clean,
        credentials_set=credentials is not None,
    )
    if active:
        _require_credentials(connector)
    if credentials is not None:
        _store_credentials(runtime, connector, credentials)
    runtime.documents.create(keys.connector_key(tenant_id, connector.id), connector)
    if active:
        connector = _activate(runtime, connector)
    return connector


def update(runtime: Runtime, tenant_id: int, connector_id: int, patch: BaseModel) -> m.Connector:
    current = get(runtime, tenant_id, connector_id)
    fields = patch.model_dump(exclude_unset=True)
    if "segment_id" in fields:
        _require_segment(runtime, tenant_id, fields["segment_id"])
    merged = {**current.config, **fields["config"]} if "config" in fields else None
    config = validate_config(runtime, current.type, merged) if merged is not None else None
    credentials = getattr(patch, "credentials", None) if "credentials" in fields else None
    if credentials is not None:
        _store_credentials(runtime, current, credentials)
    wants_active = fields.get("active", current.active)
    resync = False

    def change(connector: m.Connector) -> m.Connector:
        nonlocal resync
        if "name" in fields:
            connector.name = fields["name"]
        if config is not None:
            connector.config = config
        if credentials is not None:
            connector.credentials_set = True
        if "segment_id" in fields and fields["segment_id"] != connector.segment_id:
            connector.segment_id = fields["segment_id"]
            connector.applied_version = None
            resync = connector.active
        if not wants_active:
            connector.active = False
        connector.updated_at = clock.now()
        return connector

    updated = runtime.documents.update(keys.connector_key(tenant_id, connector_id), m.Connector, change)
    if updated is None:
        raise NotFound("connector not found")
    if wants_active and not updated.active:
        _require_credentials(updated)
        _require_segment(runtime, tenant_id, updated.segment_id)  # deleted since the connector was made
        return _activate(runtime, updated)
    if resync:
        request_full_sync(runtime, updated)
    return updated


def delete(runtime: Runtime, tenant_id: int, connector_id: int) -> None:
    get(runtime, tenant_id, connector_id)
    runtime.tenant_secrets.delete(connector_api_key(tenant_id, connector_id))
    runtime.store.delete(keys.connector_retries_key(tenant_id, connector_id))
    runtime.store.delete(keys.counter_key(keys.connector_sync_sequence(tenant_id, connector_id)))
    runtime.store.delete(keys.connector_key(tenant_id, connector_id))
    ConnectorLedger(runtime, tenant_id, connector_id).forget()


def _store_credentials(runtime: Runtime, connector: m.Connector, credentials: m.Credentials) -> None:
    if connector.type == "file":  # a secret it would never use is not kept
        raise invalid("/credentials", "a file connector takes no credentials", "extra_forbidden")
    runtime.tenant_secrets.put(connector_api_key(connector.tenant, connector.id), credentials.api_key)


def _activate(runtime: Runtime, connector: m.Connector) -> m.Connector:
    """Turning a connector on pushes every current member (a full sync), then diffs keep it current."""

    def activate(current: m.Connector) -> m.Connector:
        current.active = True
        current.updated_at = clock.now()
        return current

    activated = runtime.documents.update(keys.connector_key(connector.tenant, connector.id), m.Connector, activate)
    assert activated is not None
    request_full_sync(runtime, activated)
    return activated


def syncs(
    runtime: Runtime, tenant_id: int, connector_id: int, limit: int, before: int | None
) -> tuple[list[m.SyncRecord], int | None]:
    """Newest first; `before` is the id the previous page ended at. Returns the page and the next cursor id."""
    get(runtime, tenant_id, connector_id)
    ids = sorted(
        (int(k.rsplit("/", 1)[1]) for k in runtime.store.list(keys.connector_syncs_prefix(tenant_id, connector_id))),
        reverse=True,
    )
    if before is not None:
        ids = [i for i in ids if i < before]
    records = []
    for sync_id in ids[:limit]:
        record = runtime.documents.load(keys.connector_sync_key(tenant_id, connector_id, sync_id), m.SyncRecord)
        if record is not None:
            records.append(record)
    return records, (ids[limit - 1] if len(ids) > limit else None)


def last_sync(runtime: Runtime, tenant_id: int, connector_id: int) -> m.SyncRecord | None:
    found = runtime.store.list(keys.connector_syncs_prefix(tenant_id, connector_id))
    if not found:
        return None
    newest = max(found, key=lambda k: int(k.rsplit("/", 1)[1]))
    return runtime.documents.load(newest, m.SyncRecord)
