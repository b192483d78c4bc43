"""Connector documents: `Connector` (no secrets in it, ever: the API key is a tenant secret, write-only
through the API, `segops.tenant_secrets`), `SyncRecord`; their keys: `segops.store.keys`. Dead-lettered
batches are objects `<t>/dead-letter/connector-<connector id>/<sync id>.jsonl` (every object key starts
with the tenant id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl

from segops import clock
from segops.boundary import StrictTrimmedModel

ConnectorType = Literal["klaviyo", "braze", "talonone", "file"]
SyncKind = Literal["incremental", "full"]
SyncStatus = Literal["queued", "running", "succeeded", "partial", "failed", "stale"]


class KlaviyoConfig(StrictTrimmedModel):
    type: Literal["klaviyo"] = "klaviyo"
    list_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    identifier: Literal["email", "external_id"] = "email"
    base_url: HttpUrl = HttpUrl("https://a.klaviyo.com")
    revision: str = Field(default="2026-01-15", pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")


class BrazeConfig(StrictTrimmedModel):
    type: Literal["braze"] = "braze"
    rest_endpoint: HttpUrl
    subscription_group_id: str = Field(min_length=1, max_length=128)
    identifier: Literal["external_id", "email"] = "external_id"


class TalonOneConfig(StrictTrimmedModel):
    type: Literal["talonone"] = "talonone"
    base_url: HttpUrl
    audience_id: int | None = Field(default=None, ge=1)
    audience_name: str | None = Field(default=None, min_length=1, max_length=200)
    audience_integration_id: str | None = Field(default=None, min_length=1, max_length=200)
    profile_id_from: str = Field(default="user_id", min_length=1, max_length=128)


class FileConfig(StrictTrimmedModel):
    type: Literal["file"] = "file"
    format: Literal["csv", "parquet"] = "csv"
    prefix: str = Field(default="connectors", pattern=r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$", max_length=200)
    snapshot: bool = False


CONFIG_MODELS: dict[str, type[StrictTrimmedModel]] = {
    "klaviyo": KlaviyoConfig,
    "braze": BrazeConfig,
    "talonone": TalonOneConfig,
    "file": FileConfig,
}


class Credentials(StrictTrimmedModel):
    # Sent in an HTTP header: printable ASCII only. A CR/LF made every send fail with an error whose
    # text (the header, key included) reached the logs.
    api_key: str = Field(min_length=1, max_length=512, pattern=r"^[\x20-\x7e]+$")


class Connector(BaseModel):
    id: int
    tenant: int
    name: str
    type: ConnectorType
    segment_id: int
    active: bool = False
    config: dict[str, object]
    credentials_set: bool = False
    # Membership version (segment_compute's commit order) of the newest compute applied; older diffs are stale.
    applied_version: int | None = None
    # Talon.One: the audience id created for `audience_name`.
    resolved_audience_id: int | None = None
    created_at: datetime = Field(default_factory=clock.now)
    updated_at: datetime = Field(default_factory=clock.now)


class SyncRecord(BaseModel):
    id: int
    connector_id: int
    kind: SyncKind
    status: SyncStatus = "queued"
    compute_id: str | None = None
    computed_at: datetime | None = None
    requested_at: datetime = Field(default_factory=clock.now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    added: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    skip_reasons: dict[str, int] = Field(default_factory=dict)
    error_summary: list[str] = Field(default_factory=list)
    dead_letter: str | None = None
    files: list[str] = Field(default_factory=list)


class RetryBacklog(BaseModel):
    """Users whose last push to the connector's platform failed: the next sync pushes their current
    membership again (`segops.connectors.sync`)."""

    user_ids: list[str] = Field(default_factory=list)


def dead_letter_key(tenant_id: int, connector_id: int, sync_id: int) -> str:
    return f"{tenant_id}/dead-letter/connector-{connector_id}/{sync_id}.jsonl"
