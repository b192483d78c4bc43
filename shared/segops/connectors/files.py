"""File connector: per compute, the diff (user_id, change, changed_at) and optionally the full snapshot
(user_id, computed_at) as CSV or Parquet objects. Keys are derived from the compute id, so a redelivered
message rewrites the same objects instead of adding new ones."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from segops.connectors.models import FileConfig
from segops.exports.formulas import neutralize
from segops.objects.base import ObjectStore

_UNSAFE = re.compile(r"[^a-z0-9_.-]+")
_CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def folder(config: FileConfig, tenant_id: int, connector_id: int, segment_id: int, run: str) -> str:
    """The tenant id comes first: a tenant-chosen prefix can only name folders inside its own."""
    safe_run = _UNSAFE.sub("-", run.lower()).strip("-.") or "run"
    return f"{tenant_id}/{config.prefix}/connector-{connector_id}/segment-{segment_id}/{safe_run}"


def write_changes(
    objects: ObjectStore,
    config: FileConfig,
    base: str,
    changed_at: datetime,
    entered: Iterable[str],
    exited: Iterable[str],
) -> tuple[str, int, int]:
    """Write `<base>/changes.<fmt>`; returns the key and the entered/exited counts."""
    counts = {"entered": 0, "exited": 0}

    def rows() -> Iterator[tuple[str, str, datetime]]:
        for change, users in (("entered", entered), ("exited", exited)):
            for user_id in users:
                counts[change] += 1
                yield (user_id, change, changed_at)

    key = f"{base}/changes.{config.format}"
    _write(objects, config.format, key, ["user_id", "change", "changed_at"], rows())
    return key, counts["entered"], counts["exited"]


def write_snapshot(
    objects: ObjectStore, config: FileConfig, base: str, computed_at: datetime, members: Iterable[str]
) -> tuple[str, int]:
    count = 0

    def rows() -> Iterator[tuple[str, datetime]]:
        nonlocal count
        for user_id in members:
            count += 1
            yield (user_id, computed_at)

    key = f"{base}/snapshot.{config.format}"
    _write(objects, config.format, key, ["user_id", "computed_at"], rows())
    return key, count


def _write(objects: ObjectStore, fmt: str, key: str, columns: list[str], rows: Iterator[tuple[object, ...]]) -> None:
    # Spooled to disk past 16 MiB so a large snapshot never has to fit in memory.
    with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
        if fmt == "csv":
            _write_csv(spool, columns, rows)
        else:
            _write_parquet(spool, columns, rows)
        spool.seek(0)
        objects.upload(key, spool, _CONTENT_TYPES[fmt])


def _write_csv(sink: IO[bytes], columns: list[str], rows: Iterator[tuple[object, ...]]) -> None:
    text = io.TextIOWrapper(sink, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([v.isoformat() if isinstance(v, datetime) else neutralize(str(v)) for v in row])
    text.detach()


def _write_parquet(sink: IO[bytes], columns: list[str], rows: Iterator[tuple[object, ...]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    stamp = pa.timestamp("ms", tz="UTC")
    types = {"user_id": pa.string(), "change": pa.string(), "changed_at": stamp, "computed_at": stamp}
    schema = pa.schema([(name, types[name]) for name in columns])

    def table(batch: list[tuple[object, ...]]) -> Any:
        return pa.Table.from_pydict({name: [row[i] for row in batch] for i, name in enumerate(columns)}, schema=schema)

    # Row groups of 64 Ki rows: memory stays bounded however large the snapshot.
    with pq.ParquetWriter(sink, schema) as writer:
        batch: list[tuple[object, ...]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 65536:
                writer.write_table(table(batch))
                batch = []
        if batch:
            writer.write_table(table(batch))
