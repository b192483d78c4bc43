"""The tenant's plan, read-only (operators set it: `python -m segops.ops plan set`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from segops.http.routes import RequestContext, Router
from segops.limits import quotas
from segops.limits.plans import Plan, plan_of

router = Router("/api/tenants/<int:tenant_id>/plan", auth=("jwt",), role="admin", tenant_from_path="tenant_id")


class PlanOut(Plan):
    events_this_month: int | None = Field(
        description="Events counted against this month's quota so far; null while the counter is unreadable "
        "(its cache is unreachable: the quota is not enforced meanwhile)."
    )


@router.get("/", response=PlanOut)
def get_plan(ctx: RequestContext) -> BaseModel:
    """The tenant's plan: quotas, rate limits and this month's events."""
    plan = plan_of(ctx.runtime, ctx.tenant_id)
    return PlanOut(**plan.model_dump(), events_this_month=quotas.events_this_month(ctx.runtime, ctx.tenant_id))
