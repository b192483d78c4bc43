"""`/api/connectors/*` (admin, JWT): connector resources, sync history and manual full syncs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from segops.boundary import PatchModel, StrictTrimmedModel
from segops.connectors import models as m
from segops.connectors import service
from segops.connectors.sync import request_full_sync
from segops.errors import Conflict
from segops.http.cursor import Cursor, cursor_key, invalid_cursor
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.ids import BodyId, Id
from segops.store import keys

router = Router("/api/connectors", auth=("jwt",), role="admin")
# Routes on one object: a user of several tenants needs not name the tenant (segops.http.authentication).
CONNECTOR = ("connector_id", keys.connector_key)


class ConnectorCreate(StrictTrimmedModel):
    name: str = Field(min_length=1, max_length=200)
    type: m.ConnectorType
    segment_id: BodyId
    active: StrictBool = False
    config: dict[str, Any] = Field(default_factory=dict)
    credentials: m.Credentials | None = Field(default=None, description="Write-only; never returned.")


class ConnectorPatch(PatchModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    segment_id: BodyId | None = None
    active: StrictBool | None = None
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


class ConnectorsCursor(Cursor):
    list_name = "connectors"
    after: Id


class SyncsCursor(Cursor):
    list_name = "connector-syncs"
    connector_id: Id
    before: Id


class ConnectorList(BaseModel):
    results: list[ConnectorOut]
    next_cursor: str | None


class SyncList(BaseModel):
    results: list[SyncOut]
    next_cursor: str | None


class PageQuery(StrictTrimmedModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=256)


def _sync_out(record: m.SyncRecord) -> SyncOut:
    return SyncOut.model_validate(record.model_dump())


def _out(ctx: RequestContext, connector: m.Connector) -> ConnectorOut:
    last = service.last_sync(ctx.runtime, connector.tenant, connector.id)
    fields = connector.model_dump(include=set(ConnectorOut.model_fields) - {"last_sync"})
    return ConnectorOut(**fields, last_sync=_sync_out(last) if last else None)


@router.get("/", query=PageQuery, response=ConnectorList)
def list_connectors(ctx: RequestContext) -> ConnectorList:
    """Connectors of the tenant, oldest first (credentials are never returned)."""
    query: PageQuery = ctx.query
    after = ConnectorsCursor.decode(query.cursor, cursor_key(ctx.runtime, ctx.tenant_id)).after if query.cursor else 0
    found = [c for c in service.list_connectors(ctx.runtime, ctx.tenant_id) if c.id > after]
    page = found[: query.limit]
    cursor = (
        ConnectorsCursor(after=page[-1].id).encode(cursor_key(ctx.runtime, ctx.tenant_id))
        if len(found) > query.limit
        else None
    )
    return ConnectorList(results=[_out(ctx, c) for c in page], next_cursor=cursor)


@router.post("/", body=ConnectorCreate, response=ConnectorOut, status=201)
def create_connector(ctx: RequestContext) -> Result:
    """Create a connector; created active, it starts with a full sync of the segment's members."""
    body: ConnectorCreate = ctx.body
    connector = service.create(
        ctx.runtime, ctx.tenant_id, body.name, body.type, body.segment_id, body.active, body.config, body.credentials
    )
    return Result(_out(ctx, connector), status=201)


@router.get("/<int:connector_id>/", tenant_from_object=CONNECTOR, response=ConnectorOut)
def get_connector(ctx: RequestContext) -> ConnectorOut:
    """One connector with its latest sync."""
    return _out(ctx, service.get(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"]))


@router.patch("/<int:connector_id>/", tenant_from_object=CONNECTOR, body=ConnectorPatch, response=ConnectorOut)
def patch_connector(ctx: RequestContext) -> ConnectorOut:
    """Rename, re-target, reconfigure, rotate credentials, (de)activate; activation runs a full sync."""
    body: ConnectorPatch = ctx.body
    return _out(ctx, service.update(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"], body))


@router.delete("/<int:connector_id>/", tenant_from_object=CONNECTOR, status=204)
def delete_connector(ctx: RequestContext) -> None:
    """Delete a connector and its stored credentials (the remote audience is left as it is)."""
    service.delete(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"])


@router.get("/<int:connector_id>/syncs/", tenant_from_object=CONNECTOR, query=PageQuery, response=SyncList)
def list_syncs(ctx: RequestContext) -> SyncList:
    """Sync history, newest first: counts, status, error summary and dead-letter location."""
    query: PageQuery = ctx.query
    connector_id = ctx.path_params["connector_id"]
    before = None
    if query.cursor:
        position = SyncsCursor.decode(query.cursor, cursor_key(ctx.runtime, ctx.tenant_id))
        if position.connector_id != connector_id:
            raise invalid_cursor()
        before = position.before
    records, next_id = service.syncs(ctx.runtime, ctx.tenant_id, connector_id, query.limit, before)
    cursor = (
        SyncsCursor(connector_id=connector_id, before=next_id).encode(cursor_key(ctx.runtime, ctx.tenant_id))
        if next_id is not None
        else None
    )
    return SyncList(results=[_sync_out(r) for r in records], next_cursor=cursor)


@router.post("/<int:connector_id>/sync/", tenant_from_object=CONNECTOR, response=SyncOut, status=202)
def request_sync(ctx: RequestContext) -> Result:
    """Queue a full resync (every current member is pushed again)."""
    connector = service.get(ctx.runtime, ctx.tenant_id, ctx.path_params["connector_id"])
    if ctx.runtime.store.get(keys.segment_key(ctx.tenant_id, connector.segment_id)) is None:
        raise Conflict(
            "the connector's segment was deleted: point it at another segment first",
            {"segment_id": connector.segment_id},
        )
    return Result(_sync_out(request_full_sync(ctx.runtime, connector)), status=202)
