"""`python -m segops.ops <command> [options]`: one subcommand per operator task, each in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from segops import logs
from segops.config import Settings
from segops.ops import plans, replay, secrets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segops.ops", description="SegOps operator commands")
    commands = parser.add_subparsers(dest="command", required=True)
    replay.register(commands)
    plans.register(commands)
    secrets.register(commands)
    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level)
    local = local_backends(settings, args.needs)
    if settings.environment == "production" and local:
        # An operator's shell that lacks a variable would otherwise act on this machine's files: a
        # replay "delivered" to a stack mounted here is marked replayed and lost to the deployment.
        print(
            f"SEGOPS_ENVIRONMENT=production with local backends ({', '.join(local)}): set the deployment's "
            "backends (docs/operations.md § Backends) before running an operator command against it",
            file=sys.stderr,
        )
        return 2
    code: int = args.run(args, settings)
    return code


def local_backends(settings: Settings, needs: Sequence[str]) -> list[str]:
    """Those of the backends a command `needs` that the settings name in-process or on-disk, as
    `SEGOPS_<NAME>=<kind>`."""
    chosen = {
        "warehouse": settings.warehouse,
        "bus": settings.bus,
        "cache": settings.cache,
        "store": settings.store,
        "objects": settings.objects,
    }
    local = {"chdb", "local", "memory"}
    return [f"SEGOPS_{name.upper()}={kind}" for name, kind in chosen.items() if name in needs and kind in local]


def run() -> None:
    """Exit without chDB's static destructors once everything is flushed (see `exit_process`)."""
    from segops.warehouse.chdb_backend import exit_process

    exit_process(main())


if __name__ == "__main__":
    run()
