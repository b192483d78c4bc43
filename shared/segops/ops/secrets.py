"""`secrets migrate [--tenant T] [--dry-run]`: move the connector and Shopify secrets that earlier
versions kept in the control-plane store into the configured tenant-secret backend, each once
(`segops.tenant_secrets.upgrade`). Prints `{"dry_run", "moved", "superseded", "orphaned", "failed",
"failures"}` (each failure: `tenant_id`, `kind`, `object_id`, `reason`); exits 1 when any failed
(left in place: fix the sealing keys and run it again)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from segops.config import Settings
from segops.ops.replay import tenant_argument
from segops.runtime import build_runtime
from segops.tenant_secrets import upgrade
from segops.tenant_secrets.base import SecretKind


def register(commands: Any) -> None:
    secrets = commands.add_parser("secrets", help="tenant secrets (connector API keys, Shopify webhook secrets)")
    actions = secrets.add_subparsers(dest="action", required=True)
    migrate = actions.add_parser(
        "migrate", help="move secrets that earlier versions kept in the store into the tenant-secret backend"
    )
    migrate.add_argument("--tenant", type=tenant_argument, help="only this tenant's (default: every tenant's)")
    migrate.add_argument("--dry-run", action="store_true", help="report what would move, change nothing")
    migrate.set_defaults(run=run_migrate, needs=("store",))


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    # The store and the tenant-secret backend are all it touches: no warehouse, bus or cache is built.
    runtime = build_runtime(settings.model_copy(update={"uses": ["store"]}))
    sealing_keys: dict[SecretKind, str] = {
        "connector": runtime.connector_secrets_key,
        "shopify": runtime.shopify_secrets_key,
    }
    report = upgrade.migrate(runtime.store, runtime.tenant_secrets, sealing_keys, args.tenant, args.dry_run)
    counts = {outcome: report.outcomes[outcome] for outcome in ("moved", "superseded", "orphaned", "failed")}
    out = {"dry_run": report.dry_run, **counts, "failures": report.failures}
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return 1 if report.failures else 0
