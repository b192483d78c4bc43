"""`plan show <tenant>` and `plan set <tenant> --events-per-month N ...`: a tenant's quotas and rate limits."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from segops.config import Settings
from segops.ids import parse_id
from segops.limits import plans
from segops.runtime import Runtime, build_runtime
from segops.store import keys
from segops.tenancy import service
from segops.tenancy.models import Tenant

# Command-line option → plan field; each takes a non-negative integer.
_LIMITS = {
    "--events-per-month": "events_per_month",
    "--api-calls-per-minute": "api_calls_per_minute",
    "--api-calls-per-minute-per-key": "api_calls_per_minute_per_key",
    "--active-segments": "active_segments",
    "--connectors": "connectors",
}


def register(commands: Any) -> None:
    plan = commands.add_parser("plan", help="show or set a tenant's plan (quotas and rate limits)")
    actions = plan.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="print the tenant's plan as JSON")
    show.add_argument("tenant", help="tenant id or slug")
    show.set_defaults(run=run_show, needs=("store",))
    change = actions.add_parser("set", help="change some of the tenant's limits; the others are kept")
    change.add_argument("tenant", help="tenant id or slug")
    change.add_argument("--name", help="the plan's name, shown to the tenant")
    for option, field in _LIMITS.items():
        change.add_argument(option, dest=field, type=int, metavar="N")
    change.set_defaults(run=run_set, needs=("store", "cache"))


def _tenant(runtime: Runtime, reference: str) -> Tenant | None:
    tenant_id = parse_id(reference)
    if tenant_id is None:
        return service.tenant_by_slug(runtime, reference.lower())
    return runtime.documents.load(keys.tenant_key(tenant_id), Tenant)


def _print(tenant: Tenant, plan: plans.Plan) -> None:
    out = {"tenant": tenant.id, "slug": tenant.slug, "plan": plan.model_dump(mode="json")}
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    runtime = build_runtime(settings)
    tenant = _tenant(runtime, args.tenant)
    if tenant is None:
        sys.stderr.write(f"no tenant {args.tenant!r}\n")
        return 2
    _print(tenant, plans.plan_of(runtime, tenant.id))
    return 0


def run_set(args: argparse.Namespace, settings: Settings) -> int:
    runtime = build_runtime(settings)
    tenant = _tenant(runtime, args.tenant)
    if tenant is None:
        sys.stderr.write(f"no tenant {args.tenant!r}\n")
        return 2
    changes = {field: getattr(args, field) for field in [*_LIMITS.values(), "name"] if getattr(args, field) is not None}
    if not changes:
        sys.stderr.write("nothing to set: pass at least one of --name, " + ", ".join(_LIMITS) + "\n")
        return 2
    try:
        plan = plans.set_plan(runtime, tenant.id, changes)
    except ValueError as exc:  # pydantic's ValidationError: a limit out of range
        sys.stderr.write(f"invalid plan: {exc}\n")
        return 2
    _print(tenant, plan)
    return 0
