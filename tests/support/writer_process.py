"""An event writer in a process of its own, for the fault tests: `python -m tests.support.writer_process
<messages.json>` writes the `EventBatch` bodies listed in the file as one flush of the real writer
(`write_flush`) into the ClickHouse server the environment names (`SEGOPS_WAREHOUSE=clickhouse`).

After each INSERT the server acknowledged it prints `inserted <n>` and waits for a line on stdin
before going on, so a test can SIGKILL it at a known point in the middle of the flush.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from segops.config import Settings
from segops.ingestion.writer import write_flush
from segops.messages import EventBatch
from segops.runtime import build_runtime


def main(path: Path) -> None:
    runtime = build_runtime(Settings())
    warehouse = runtime.warehouse
    inserted = 0

    def insert(
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        nonlocal inserted
        warehouse.__class__.insert(warehouse, table, columns, rows, settings)
        inserted += 1
        print(f"inserted {inserted}", flush=True)
        sys.stdin.readline()

    warehouse.insert = insert  # type: ignore[method-assign]
    batches = [EventBatch.model_validate_json(body) for body in orjson.loads(path.read_bytes())]
    write_flush(runtime, [batch.events for batch in batches])
    print("flushed", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
