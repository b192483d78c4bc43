"""The `membership` function: `GET /api/segments/membership/?user_id=`."""

from __future__ import annotations

from pydantic import BaseModel

from segops.boundary import StrictModel
from segops.http.routes import RequestContext, Router
from segops.ingestion.events import UserId
from segops.membership.lookup import user_segments

router = Router("/api/segments/membership")


class MembershipQuery(StrictModel):
    user_id: UserId  # as ingestion takes it: an id with control characters can have no events


class MembershipOut(BaseModel):
    user_id: str
    segment_ids: list[int]
    cached: bool


@router.get("/", query=MembershipQuery, response=MembershipOut)
def membership(ctx: RequestContext) -> MembershipOut:
    """The active segments a user is in (cached 5 minutes; `cached` says whether this answer was)."""
    segment_ids, cached = user_segments(ctx.runtime, ctx.tenant_id, ctx.query.user_id)
    return MembershipOut(user_id=ctx.query.user_id, segment_ids=segment_ids, cached=cached)
