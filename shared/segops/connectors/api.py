"""`/api/connectors/*` (admin, JWT): connector resources, sync history and manual full syncs."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from segops.connectors import models as m
from segops.connectors import service
from segops.errors import ValidationFailed
from segops.http.ids import parse_id
from segops.http.routing import RequestContext, Result, Router

router = Router(tags=["connectors"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConnectorCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    type: m.ConnectorType
    segment_id: int = Field(ge=1)
    active: bool = False
    config: dict[str, Any] = Field(default_factory=dict)
    credentials: m.Credentials | None = Field(default=None, description="Write-only; never returned.")


class ConnectorPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    segment_id: int | None = Field(default=None, ge=1)
    active: bool | None = None
    config: dict[str, Any] | None = Field(default=None, description="Merged into the current config, then validated.")
    credentials: m.Credentials | None = Field(default=None, description="Write-only; replaces the stored secret.")


class SyncOut(BaseModel):
    id: int
    connector_id: int
    kind: m.SyncKind
    status: m.SyncStatus
    compute_id: str | None
    computed_at: datetime | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    added: int
    removed: int
    skipped: int
    failed: int
    skip_reasons: dict[str, int]
    error_summary: list[str]
    dead_letter: str | None
    files: list[str]


class ConnectorOut(BaseModel):
    id: int
    tenant: int
    name: str
    type: m.ConnectorType
    segment_id: int
    active: bool
    config: dict[str, Any]
    credentials_set: bool
    created_at: datetime
    updated_at: datetime
    last_sync: SyncOut | None = None


class ConnectorList(BaseModel):
    results: list[ConnectorOut]
    next_cursor: str | None


class SyncList(BaseModel):
    results: list[SyncOut]
    next_cursor: str | None


class PageQuery(Strict):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=64)


def _patch_fields(patch: ConnectorPatch) -> None:
    # Explicit nulls would mean "unset", which none of these fields supports.
    nulls = [name for name in patch.model_fields_set if getattr(patch, name) is None]
    if nulls:
        raise ValidationFailed(
            f"{nulls[0]}: may not be null", {"errors": [{"pointer": f"/{n}", "message": "null"} for n in nulls]}
        )


def _sync_out(record: m.SyncRecord) -> SyncOut:
    return SyncOut.model_validate(record.model_dump())


def _out(ctx: RequestContext, connector: m.Connector) -> ConnectorOut:
    last = service.last_sync(ctx.runtime, connector.tenant, connector.id)
    fields = connector.model_dump(include=set(ConnectorOut.model_fields) - {"last_sync"})
    return ConnectorOut(**fields, last_sync=_sync_out(last) if last else None)


def _encode(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode()


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        position = parse_id(base64.urlsafe_b64decode(value.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if position is None:
        raise ValidationFailed("cursor: invalid", {"errors": [{"pointer": "/query/cursor", "message": "invalid"}]})
    return position


@router.get("/api/connectors/", auth=("jwt",), role="admin", query=PageQuery, response=ConnectorList)
def list_connectors(ctx: RequestContext) -> ConnectorList:
    """Connectors of the tenant, oldest first (credentials are never returned)."""
    query: PageQuery = ctx.query
    after = _cursor(query.cursor)
    found = [c for c in service.list_connectors(ctx.runtime, ctx.tenant_id) if after is None or c.id > after]
    page = found[: query.limit]
    more = len(found) > query.limit
    return ConnectorList(results=[_out(ctx, c) for c in page], next_cursor=_encode(page[-1].id) if more else None)


@router.post("/api/connectors/", auth=("jwt",), role="admin", body=ConnectorCreate, response=ConnectorOut, status=201)
def create_connector(ctx: RequestContext) -> Result:
    """Create a connector; created active, it starts with a full sync of the segment's members."""
    body: ConnectorCreate = ctx.body
    connector = service.create(
        ctx.runtime, ctx.tenant_id, body.name, body.type, body.segment_id, body.active, body.config, body.credentials
    )
    return Result(_out(ctx, connector), status=201)


@router.get("/api/connectors/<int:connector_id>/", auth=("jwt",), role="admin", response=ConnectorOut)
def get_connector(ctx: RequestContext) -> ConnectorOut:
    """One connector with its latest sync."""
    return _out(ctx, service.get(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"]))


@router.patch(
    "/api/connectors/<int:connector_id>/", auth=("jwt",), role="admin", body=ConnectorPatch, response=ConnectorOut
)
def patch_connector(ctx: RequestContext) -> ConnectorOut:
    """Rename, re-target, reconfigure, rotate credentials, (de)activate; activation runs a full sync."""
    body: ConnectorPatch = ctx.body
    _patch_fields(body)
    return _out(ctx, service.update(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"], body))


@router.delete("/api/connectors/<int:connector_id>/", auth=("jwt",), role="admin", status=204)
def delete_connector(ctx: RequestContext) -> None:
    """Delete a connector and its stored credentials (the remote audience is left as it is)."""
    service.delete(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"])


@router.get(
    "/api/connectors/<int:connector_id>/syncs/", auth=("jwt",), role="admin", query=PageQuery, response=SyncList
)
def list_syncs(ctx: RequestContext) -> SyncList:
    """Sync history, newest first: counts, status, error summary and dead-letter location."""
    query: PageQuery = ctx.query
    records, next_id = service.syncs(
        ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"], query.limit, _cursor(query.cursor)
    )
    cursor = _encode(next_id) if next_id is not None else None
    return SyncList(results=[_sync_out(r) for r in records], next_cursor=cursor)


@router.post("/api/connectors/<int:connector_id>/sync/", auth=("jwt",), role="admin", response=SyncOut, status=202)
def request_sync(ctx: RequestContext) -> Result:
    """Queue a full resync (every current member is pushed again)."""
    connector = service.get(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"])
    return Result(_sync_out(service.request_full_sync(ctx.runtime, connector)), status=202)
