"""What usage metering costs ingestion (docs/performance.md): 500-event batches through the
`track_batch` function's HTTP dispatch (authentication, validation, publish, the access log), then the
event writer storing them (concurrent deliveries, micro-batched as in production). With metering on:
an API call counted per request and the accepted events per writer insert, the buffer's flush to the
warehouse, and the `events_stored` view on every writer insert; the baseline is the same stack with
`SEGOPS_METERING=false` and that view dropped. Target: time with metering <= 1.05x without.
Also the counting alone: a request's `Meter.count` vs one request's dispatch, and the writer's count
of 500 accepted events vs the writer's time for 500 events.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from segops.config import Settings
from segops.localstack import LocalStack
from segops.messages import TrackedEvent
from segops.metering.meter import Meter, meter_for
from segops.metering.units import events_accepted
from segops.runtime import set_runtime
from segops.warehouse import chdb_backend

from benchmarks.bench_ingestion import BATCH_SIZE, _bodies
from benchmarks.harness import Figure, best_of, ratio_figure
from tests.support.api import Api

ROUNDS = 5
COUNT_CALLS = 100_000
ACCEPTED_BATCHES = 2_000


def _stack(workdir: Path, chdb_path: Path, metering: bool) -> LocalStack:
    stack = LocalStack(
        Settings(
            environment="test",
            data_dir=workdir / f"metering-{metering}",
            chdb_path=chdb_path,
            clickhouse_database=f"bench_metering_{uuid.uuid4().hex[:8]}",
            jwt_secret=SecretStr("bench-" + "x" * 40),
            password_hash_time_cost=1,
            password_hash_memory_kib=1024,
            metering=metering,
        )
    )
    if not metering:
        stack.runtime.warehouse.command("DROP VIEW usage_events_stored_mv")
    return stack


def run(scale: float) -> list[Figure]:
    bodies = _bodies(max(BATCH_SIZE * 4, int(200_000 * scale)))
    events = len(bodies) * BATCH_SIZE
    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-metering-"))
    # chDB serves one data directory per process: join the one another benchmark opened, if any.
    opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
    stacks = {metering: _stack(workdir, opened or workdir / "chdb", metering) for metering in (True, False)}
    try:
        runners = {}
        for metering, stack in stacks.items():
            set_runtime(stack.runtime)  # the functions serve the process's runtime: this stack's
            account = Api(stack).signup(slug="bench")
            client = stack.apps["track_batch"].test_client()
            headers = {"Authorization": f"ApiKey {account.api_key}", "Content-Type": "application/json"}

            def accept(stack: LocalStack = stack, client: object = client, headers: dict[str, str] = headers) -> None:
                set_runtime(stack.runtime)
                for body in bodies:
                    response = client.post("/api/ingestion/track/batch/", data=body, headers=headers)  # type: ignore[attr-defined]
                    assert response.status_code == 202
                meter_for(stack.runtime).flush()

            def write(stack: LocalStack = stack) -> None:
                # Concurrent deliveries, as Pub/Sub pushes them to a writer instance (group commit).
                stack.bus.start()
                while stack.bus.pending():
                    time.sleep(0.005)
                stack.bus.stop()

            runners[metering] = (accept, write)
        # Alternated, best of several each: on a shared machine the load moves between runs.
        runs: dict[tuple[bool, int], list[float]] = {(m, phase): [] for m in (True, False) for phase in (0, 1)}
        for round_number in range(ROUNDS):
            # Either goes first in turn: a phase runs slower right after the other stack's writes.
            for metering in (True, False) if round_number % 2 == 0 else (False, True):
                for phase in (0, 1):
                    runs[(metering, phase)].append(best_of(runners[metering][phase], repeat=1))
        accept_on, accept_off = min(runs[(True, 0)]), min(runs[(False, 0)])
        write_on, write_off = min(runs[(True, 1)]), min(runs[(False, 1)])
        # A meter of its own: its counts are never flushed into the stack's figures.
        meter = Meter(stacks[True].runtime.warehouse)
        now = datetime.now(UTC)
        accepted = [
            TrackedEvent(
                tenant_id=1, event_id=uuid.uuid4(), user_id=f"u{i}", event_type="x", occurred_at=now, received_at=now
            )
            for i in range(BATCH_SIZE)
        ]

        def count_calls() -> None:
            for _ in range(COUNT_CALLS):
                meter.count(1, "api_calls", 1, "track_batch:2xx")

        def count_accepted() -> None:
            for _ in range(ACCEPTED_BATCHES):
                events_accepted(meter, accepted)

        per_request_counts = best_of(count_calls) / COUNT_CALLS
        per_batch_accepted = best_of(count_accepted) / ACCEPTED_BATCHES
    finally:
        for stack in stacks.values():
            stack.stop()  # its usage counts are written before their database goes (chDB stays open)
            stack.runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{stack.settings.clickhouse_database}`")
        shutil.rmtree(workdir, ignore_errors=True)
    return [
        ratio_figure(
            "ingestion with usage metering: track_batch HTTP dispatch + event writer, 500-event batches",
            events / (accept_on + write_on),
            "events/s",
            "the same stack with metering off",
            events / (accept_off + write_off),
            target="time <= 1.05x without metering",
            cost_ratio=(accept_on + write_on) / (accept_off + write_off),
            dispatch_cost_ratio=accept_on / accept_off,
            writer_cost_ratio=write_on / write_off,
            events=events,
            rounds=ROUNDS,
        ),
        ratio_figure(
            "usage counting per request (the Meter.count of its API call), requests/s",
            1 / per_request_counts,
            "requests/s",
            "track_batch dispatch of one 500-event request, metering off",
            len(bodies) / accept_off,
            target="counting <= 1% of a request's dispatch time",
            cost_ratio=per_request_counts / (accept_off / len(bodies)),
        ),
        ratio_figure(
            "accepted events counted by the writer, 500 at a time (once per event id), events/s",
            BATCH_SIZE / per_batch_accepted,
            "events/s",
            "event_writer storing the same events, metering off",
            events / write_off,
            target="counting <= 1% of the writer's time",
            cost_ratio=per_batch_accepted / (write_off / len(bodies)),
        ),
    ]
