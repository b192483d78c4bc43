"""HTTP routes for segments (the `api` function): CRUD, versions, preview, members."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, StrictBool, StrictInt

from segops.ai.api import MAX_PROMPT, DraftNotes
from segops.ai.draft import draft_segment
from segops.boundary import PatchModel, StrictTrimmedModel
from segops.dsl import parse_definition
from segops.errors import invalid
from segops.http.cursor import Cursor, cursor_key, invalid_cursor
from segops.http.responses import Result
from segops.http.routes import RequestContext, Router
from segops.ids import Id
from segops.lookalike.models import checked_seed, parse_lookalike
from segops.membership import store as membership
from segops.segments import models as m
from segops.segments import service
from segops.segments.computes import queue_compute
from segops.segments.preview import MAX_SAMPLE, preview
from segops.store import keys
from segops.tenancy.models import User

router = Router("/api/segments")
# Routes on one object: a user of several tenants needs not name the tenant (segops.http.authentication).
SEGMENT = ("segment_id", keys.segment_key)


class SegmentOut(BaseModel):
    id: int
    tenant: int
    name: str
    description: str
    segment_type: m.SegmentType
    definition: dict[str, Any] | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    last_computed_at: datetime | None
    member_count: int | None
    compute_status: m.ComputeStatus | None
    etag: str = Field(
        description="The segment's `ETag`: send it as `If-Match` on PATCH or DELETE to change only the segment "
        "as read (412 `precondition_failed` if it changed since). A compute does not change it."
    )
    draft: DraftNotes | None = Field(
        default=None,
        description="Only in the answer to a create or PATCH whose definition was drafted from its `prompt` "
        "(no `definition` sent): the drafter's explanation and warnings, as `POST /api/segments/ai/draft/` "
        "gives them. Null everywhere else.",
    )


class SegmentsCursor(Cursor):
    list_name = "segments"
    after: Id


class MembersCursor(Cursor):
    """Pins the compute (membership snapshot) of the first page; bound to its segment."""

    list_name = "segment-members"
    segment_id: Id
    snapshot: Id
    after: str


class SegmentList(BaseModel):
    results: list[SegmentOut]
    next_cursor: str | None


class SegmentListQuery(StrictTrimmedModel):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512)
    segment_type: m.SegmentType | None = Field(default=None, validation_alias=AliasChoices("segment_type", "type"))
    active: bool | None = None


class SegmentCreate(StrictTrimmedModel):
    name: str = Field(min_length=1, max_length=200)
    tenant: int | str | None = Field(default=None, description="Tenant id or slug (also query or X-SegOps-Tenant).")
    segment_type: m.SegmentType = "rule"
    description: str = Field(default="", max_length=2000)
    active: StrictBool = True
    definition: dict[str, Any] | None = Field(default=None, description="Optional; usually set later by PATCH.")
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PROMPT,
        description="`ai` segments only: the prompt the definition was drafted from (drafted now if no definition).",
    )


class SegmentPatch(PatchModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    active: StrictBool | None = None
    definition: dict[str, Any] | None = None
    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT)


class VersionOut(BaseModel):
    version: int
    definition: dict[str, Any]
    created_at: datetime
    created_by: str | None
    prompt: str | None = Field(default=None, description="`ai` segments: the prompt of this definition.")


class VersionList(BaseModel):
    results: list[VersionOut]


class PreviewRequest(StrictTrimmedModel):
    definition: dict[str, Any]
    limit: StrictInt = Field(default=10, ge=0, le=MAX_SAMPLE)
    tenant: int | str | None = None


class PreviewOut(BaseModel):
    matched_users: int
    sample_user_ids: list[str]
    sql: str = Field(description="The compiled query, with parameter placeholders instead of values.")


class MembersQuery(StrictTrimmedModel):
    limit: int = Field(default=100, ge=1, le=10_000)
    cursor: str | None = Field(default=None, max_length=2048)


class MemberOut(BaseModel):
    user_id: str
    computed_at: datetime


class MembersOut(BaseModel):
    results: list[MemberOut]
    next_cursor: str | None = Field(description="Opaque; pinned to the compute the first page read.")
    count: int = Field(description="Members in that compute.")


def actor(ctx: RequestContext) -> str | None:
    """Who made a change, as shown in version history: the user's email or `api_key:<id>`."""
    principal = ctx.principal
    assert principal is not None
    if principal.kind == "api_key":
        return f"api_key:{principal.key_id}"
    user = ctx.runtime.documents.load(keys.user_key(principal.user_id), User) if principal.user_id else None
    return user.email if user else None


def segment_out(ctx: RequestContext, segment: m.Segment) -> SegmentOut:
    state = service.compute_state(ctx.runtime, ctx.tenant_id, segment.id)
    return SegmentOut(
        **segment.model_dump(exclude={"created_by"}),
        last_computed_at=state.last_computed_at if state else None,
        member_count=state.member_count if state else None,
        compute_status=state.status if state else None,
        etag=service.etag(segment),
    )


def tagged(ctx: RequestContext, out: SegmentOut) -> SegmentOut:
    """`out` with its `ETag` header set."""
    ctx.response_headers["ETag"] = out.etag
    return out


def if_match(ctx: RequestContext) -> str | None:
    return ctx.request.headers.get("If-Match")


def validated_definition(ctx: RequestContext, raw: dict[str, Any], segment_type: m.SegmentType) -> dict[str, Any]:
    """The definition exactly as written, once valid for the segment type; invalid → 400 pointing under
    `/definition` (a lookalike's seed must exist, not be a lookalike, and have computed members: 400/409)."""
    if segment_type == "lookalike":
        checked_seed(ctx.runtime, ctx.tenant_id, parse_lookalike(raw, ("definition",)))
    else:
        parse_definition(raw, ("definition",))
    return raw


def check_prompt(prompt: str | None, segment_type: m.SegmentType) -> None:
    if prompt is not None and segment_type != "ai":
        raise invalid("/prompt", "only segments with segment_type 'ai' have a prompt")


@router.post("/preview/", role="member", body=PreviewRequest, response=PreviewOut)
def preview_definition(ctx: RequestContext) -> PreviewOut:
    """Match count, a sample of member ids and the compiled SQL of an unsaved definition; writes nothing."""
    body: PreviewRequest = ctx.body
    found = preview(ctx.runtime, ctx.tenant_id, parse_definition(body.definition, ("definition",)), body.limit)
    return PreviewOut(matched_users=found.matched_users, sample_user_ids=found.sample_user_ids, sql=found.sql)


@router.get("/", query=SegmentListQuery, response=SegmentList)
def list_segments(ctx: RequestContext) -> SegmentList:
    """Segments of the tenant by id, filterable by `type`/`segment_type` and `active`; opaque cursor."""
    query: SegmentListQuery = ctx.query
    page = service.list_segments(
        ctx.runtime,
        ctx.tenant_id,
        limit=query.limit,
        after=SegmentsCursor.decode(query.cursor, cursor_key(ctx.runtime, ctx.tenant_id)).after if query.cursor else 0,
        segment_type=query.segment_type,
        active=query.active,
    )
    cursor = (
        SegmentsCursor(after=page.next_after).encode(cursor_key(ctx.runtime, ctx.tenant_id))
        if page.next_after is not None
        else None
    )
    return SegmentList(results=[segment_out(ctx, s) for s in page.items], next_cursor=cursor)


@router.post("/", role="member", body=SegmentCreate, response=SegmentOut, status=201)
def create_segment(ctx: RequestContext) -> Result:
    """Create a segment; the definition is normally set afterwards by PATCH."""
    body: SegmentCreate = ctx.body
    check_prompt(body.prompt, body.segment_type)
    definition, notes = None, None
    if body.definition is not None:
        definition = validated_definition(ctx, body.definition, body.segment_type)
    if definition is None and body.prompt is not None:
        definition, notes = _drafted(ctx, body.prompt)
    segment = service.create_segment(
        ctx.runtime,
        ctx.tenant_id,
        name=body.name,
        segment_type=body.segment_type,
        description=body.description,
        active=body.active,
        created_by=actor(ctx),
        definition=definition,
        prompt=body.prompt,
    )
    _compute_if_changed(ctx, None, segment)
    return Result(tagged(ctx, segment_out(ctx, segment).model_copy(update={"draft": notes})), status=201)


def _drafted(ctx: RequestContext, prompt: str) -> tuple[dict[str, Any], DraftNotes]:
    """The definition drafted from `prompt`, and what the drafter said of it."""
    drafted = draft_segment(ctx.runtime, ctx.tenant_id, prompt)
    return drafted.definition, DraftNotes.model_validate(drafted, from_attributes=True)


def _compute_if_changed(ctx: RequestContext, before: m.Segment | None, after: m.Segment) -> None:
    """An active segment whose definition changed is computed at once in full, one switched on by a
    delta: its lookups and members must not keep answering for a definition it no longer has, nor
    miss the events of its time off. A compute requested before this one starts joins it."""
    redefined = before is None or after.version != before.version
    switched_on = before is not None and after.active and not before.active
    if after.active and after.definition is not None and (redefined or switched_on):
        queue_compute(ctx.runtime, ctx.tenant_id, after.id, "full" if redefined else "delta")


@router.get("/<int:segment_id>/", tenant_from_object=SEGMENT, response=SegmentOut)
def get_segment(ctx: RequestContext) -> SegmentOut:
    """One segment with its latest compute's status and member count."""
    return tagged(ctx, segment_out(ctx, service.get_segment(ctx.runtime, ctx.tenant_id, ctx.path_params["segment_id"])))


@router.patch("/<int:segment_id>/", tenant_from_object=SEGMENT, role="member", body=SegmentPatch, response=SegmentOut)
def patch_segment(ctx: RequestContext) -> SegmentOut:
    """Change name, description, active or definition; a new definition becomes a new version. With
    `If-Match: <etag>`, only if the segment is unchanged since that `ETag` was read (else 412)."""
    body: SegmentPatch = ctx.body
    segment_id = ctx.path_params["segment_id"]
    current = service.get_segment(ctx.runtime, ctx.tenant_id, segment_id)
    service.check_if_match(if_match(ctx), current)  # before drafting or validating anything
    segment_type = current.segment_type
    check_prompt(body.prompt, segment_type)
    definition, notes = None, None
    if body.definition is not None:
        definition = validated_definition(ctx, body.definition, segment_type)
    if definition is None and body.prompt is not None:
        definition, notes = _drafted(ctx, body.prompt)
    changes = body.model_dump(include={"name", "description", "active"}, exclude_none=True)
    segment = service.update_segment(
        ctx.runtime,
        ctx.tenant_id,
        segment_id,
        changes,
        definition=definition,
        prompt=body.prompt,
        actor=actor(ctx),
        if_match=if_match(ctx),
    )
    _compute_if_changed(ctx, current, segment)
    return tagged(ctx, segment_out(ctx, segment).model_copy(update={"draft": notes}))


@router.delete("/<int:segment_id>/", tenant_from_object=SEGMENT, role="member", status=204)
def delete_segment(ctx: RequestContext) -> None:
    """Delete a segment; membership lookups stop returning it immediately. With `If-Match: <etag>`, only
    if the segment is unchanged since that `ETag` was read (else 412)."""
    service.delete_segment(ctx.runtime, ctx.tenant_id, ctx.path_params["segment_id"], if_match(ctx))


@router.get("/<int:segment_id>/versions/", tenant_from_object=SEGMENT, response=VersionList)
def list_versions(ctx: RequestContext) -> VersionList:
    """Definition history, newest first."""
    versions = service.list_versions(ctx.runtime, ctx.tenant_id, ctx.path_params["segment_id"])
    return VersionList(results=[VersionOut.model_validate(v.model_dump()) for v in versions])


@router.get("/<int:segment_id>/members/", tenant_from_object=SEGMENT, query=MembersQuery, response=MembersOut)
def list_segment_members(ctx: RequestContext) -> MembersOut:
    """Members of the latest completed compute by user id; the cursor pins that compute, so a compute
    landing mid-pagination neither repeats nor skips anyone."""
    query: MembersQuery = ctx.query
    segment_id = ctx.path_params["segment_id"]
    service.get_segment(ctx.runtime, ctx.tenant_id, segment_id)
    after: str | None = None
    snapshot: int | None = None
    if query.cursor:
        position = MembersCursor.decode(query.cursor, cursor_key(ctx.runtime, ctx.tenant_id))
        if position.segment_id != segment_id:
            raise invalid_cursor()
        snapshot, after = position.snapshot, position.after
    warehouse = ctx.runtime.warehouse
    page = membership.members_page(warehouse, ctx.tenant_id, segment_id, after, query.limit, snapshot)
    cursor = (
        MembersCursor(segment_id=segment_id, snapshot=page.snapshot, after=page.next_after).encode(
            cursor_key(ctx.runtime, ctx.tenant_id)
        )
        if page.next_after is not None
        else None
    )
    return MembersOut(
        results=[MemberOut(user_id=member.user_id, computed_at=member.computed_at) for member in page.members],
        next_cursor=cursor,
        count=membership.member_count(warehouse, ctx.tenant_id, segment_id, page.snapshot) if page.snapshot else 0,
    )
