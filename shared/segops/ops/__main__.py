"""`python -m segops.ops <command> [options]`: one subcommand per operator task, each in its own module."""

from __future__ import annotations

import argparse
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
    code: int = args.run(args, settings)
    return code


def run() -> None:
    """Exit without chDB's static destructors once everything is flushed (see `exit_process`)."""
    from segops.warehouse.chdb_backend import exit_process

    exit_process(main())


if __name__ == "__main__":
    run()
