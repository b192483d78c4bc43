"""A tenant's plan: its quotas and rate limits. Set by an operator (`python -m segops.ops plan`), read
on every request through the cache, so a change reaches every function within `CACHE_SECONDS`."""

from __future__ import annotations

import contextlib
from datetime import datetime

from pydantic import BaseModel, Field

from segops import clock
from segops.cache.base import CacheUnavailable
from segops.config import Settings
from segops.runtime import Runtime
from segops.store import keys

# The plan changes rarely and is read on every request: one cache read, the store on a miss.
CACHE_SECONDS = 60.0
DEFAULT_NAME = "default"


class Plan(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    events_per_month: int = Field(ge=0, description="Events accepted per calendar month (UTC); over it, 429.")
    api_calls_per_minute: int = Field(ge=1, description="Requests per minute for the whole tenant.")
    api_calls_per_minute_per_key: int = Field(ge=1, description="Requests per minute for one API key.")
    active_segments: int = Field(ge=0, description="Active segments at once; one more is 409.")
    connectors: int = Field(ge=0, description="Connectors; one more is 409.")
    updated_at: datetime | None = None


def default_plan(settings: Settings) -> Plan:
    return Plan(
        name=DEFAULT_NAME,
        events_per_month=settings.plan_events_per_month,
        api_calls_per_minute=settings.plan_api_calls_per_minute,
        api_calls_per_minute_per_key=settings.plan_api_calls_per_minute_per_key,
        active_segments=settings.plan_active_segments,
        connectors=settings.plan_connectors,
    )


def _cache_key(tenant_id: int) -> str:
    return f"plan:{tenant_id}"


def plan_of(runtime: Runtime, tenant_id: int) -> Plan:
    """The tenant's plan: its own, else the default one. The cache only saves store reads: with the
    cache down the plan still comes from the store (creating a segment must not fail for it)."""
    try:
        cached = runtime.cache.get(_cache_key(tenant_id))
    except CacheUnavailable:
        return _stored_plan(runtime, tenant_id)
    if cached is not None:
        return Plan.model_validate_json(cached)
    plan = _stored_plan(runtime, tenant_id)
    with contextlib.suppress(CacheUnavailable):  # the plan stands; the next read fills the entry
        runtime.cache.set(_cache_key(tenant_id), plan.model_dump_json().encode(), CACHE_SECONDS)
    return plan


def _stored_plan(runtime: Runtime, tenant_id: int) -> Plan:
    return runtime.documents.load(keys.plan_key(tenant_id), Plan) or default_plan(runtime.settings)


def set_plan(runtime: Runtime, tenant_id: int, changes: dict[str, object]) -> Plan:
    """Change some of the tenant's limits (the others keep their current values); effective at once
    where the cache is shared, elsewhere within `CACHE_SECONDS`."""
    current = _stored_plan(runtime, tenant_id)
    plan = Plan.model_validate({**current.model_dump(), **changes, "updated_at": clock.now()})
    runtime.documents.save(keys.plan_key(tenant_id), plan)
    runtime.cache.delete(_cache_key(tenant_id))
    return plan
