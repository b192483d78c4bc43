"""`POST /api/segments/ai/draft/`: a segment definition drafted from a natural-language prompt."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from segops.ai.draft import draft_segment
from segops.boundary import StrictTrimmedModel
from segops.dsl import parse_definition
from segops.http.routes import RequestContext, Router

router = Router("/api/segments/ai")
MAX_PROMPT = 2000


class DraftRequest(StrictTrimmedModel):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    definition: dict[str, Any] | None = Field(default=None, description="A definition to refine (AND-ed).")
    tenant: int | str | None = None


class DraftNotes(BaseModel):
    """What the drafter said of a definition it drafted (also in a segment created from a prompt)."""

    explanation: list[str] = Field(description="One plain-English line per condition.")
    warnings: list[str] = Field(description="Phrases not understood and assumptions made.")
    provider: str


class DraftOut(DraftNotes):
    definition: dict[str, Any]


@router.post("/draft/", role="member", body=DraftRequest, response=DraftOut)
def draft(ctx: RequestContext) -> DraftOut:
    """Draft a definition from a prompt, grounded in the tenant's event types and properties; saves nothing."""
    body: DraftRequest = ctx.body
    if body.definition is not None:
        parse_definition(body.definition, ("definition",))
    drafted = draft_segment(ctx.runtime, ctx.tenant_id, body.prompt, body.definition)
    return DraftOut.model_validate(drafted, from_attributes=True)
