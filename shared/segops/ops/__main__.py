"""`python -m segops.ops <command> ...`: each command module registers its subcommand here."""

from __future__ import annotations

import argparse
import sys

from segops.ops import plans
from segops.runtime import build_runtime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m segops.ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plans.register(commands)
    args = parser.parse_args(argv)
    code: int = args.run(build_runtime(), args)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
