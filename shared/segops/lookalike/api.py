"""`POST /api/segments/lookalike/preview/`: estimated size and score distribution of an unsaved definition."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from segops import clock
from segops.boundary import StrictModel
from segops.http.routes import RequestContext, Router
from segops.lookalike.models import parse_lookalike
from segops.lookalike.service import preview

router = Router("/api/segments/lookalike")


class LookalikePreviewRequest(StrictModel):
    definition: dict[str, Any]
    tenant: int | str | None = None


class BucketOut(BaseModel):
    min_score: float
    max_score: float
    users: int


class LookalikePreviewOut(BaseModel):
    estimated_size: int
    seed_users: int
    scored_users: int
    histogram: list[BucketOut]


@router.post("/preview/", role="member", body=LookalikePreviewRequest, response=LookalikePreviewOut)
def preview_lookalike(ctx: RequestContext) -> LookalikePreviewOut:
    """Train and score now: the size the lookalike would have and a 10-bucket histogram of non-seed scores."""
    body: LookalikePreviewRequest = ctx.body
    found = preview(ctx.runtime, ctx.tenant_id, parse_lookalike(body.definition, ("definition",)), clock.now_millis())
    return LookalikePreviewOut(
        estimated_size=found.estimated_size,
        seed_users=found.seed_users,
        scored_users=found.scored_users,
        histogram=[BucketOut(min_score=b.min_score, max_score=b.max_score, users=b.users) for b in found.histogram],
    )
