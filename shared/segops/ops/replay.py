"""`replay`: publish a topic's dead letters again, each once (`segops.bus.dead_letters`).

With Pub/Sub the messages go back to the topic and its subscribers; with the local bus this process
mounts the stack (as `make dev` does, on the same data directory, which `make dev` must not hold
meanwhile) and delivers them before it exits.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson

from segops.bus.base import Topic
from segops.bus.dead_letters import replay
from segops.config import Settings
from segops.ids import parse_id
from segops.localstack import LocalStack
from segops.runtime import build_runtime


def since_argument(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or date-time: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tenant_argument(text: str) -> int:
    tenant_id = parse_id(text)
    if tenant_id is None:
        raise argparse.ArgumentTypeError(f"not a tenant id: {text!r}")
    return tenant_id


def register(commands: Any) -> None:
    parser = commands.add_parser("replay", help="publish a topic's dead letters again, each exactly once")
    parser.add_argument("--topic", required=True, choices=[topic.value for topic in Topic])
    parser.add_argument("--since", required=True, type=since_argument, help="dead-lettered at or after (ISO 8601)")
    parser.add_argument("--tenant", type=tenant_argument, help="only this tenant's (default: every tenant's)")
    parser.set_defaults(run=run, needs=("store", "bus"))


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.bus == "local":
        stack = LocalStack(settings)
        try:
            report = replay(stack.runtime.store, stack.bus, args.topic, args.since, args.tenant)
            stack.bus.drain()
        finally:
            stack.stop()
    else:
        runtime = build_runtime(settings)
        report = replay(runtime.store, runtime.bus, args.topic, args.since, args.tenant)
    print(orjson.dumps({"topic": args.topic, **dataclasses.asdict(report)}).decode(), flush=True)
    return 0
