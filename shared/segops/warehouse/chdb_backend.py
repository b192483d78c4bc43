from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from segops.warehouse.base import QueryResult
from segops.warehouse.params import format_params

_SESSIONS: dict[Path, Any] = {}
_SESSIONS_LOCK = threading.Lock()
_COPY_CHUNK = 1 << 20


def _session(path: Path) -> Any:
    """chDB allows one session per data directory per process: share it."""
    from chdb import session as chdb_session

    key = path.resolve()
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            key.mkdir(parents=True, exist_ok=True)
            _SESSIONS[key] = chdb_session.Session(str(key))
        return _SESSIONS[key]


def _json_default(value: Any) -> Any:
    return str(value)


class ChdbWarehouse:
    """ClickHouse's engine in-process. Queries are serialised: one chDB session is not re-entrant."""

    def __init__(self, path: Path, database: str = "segops") -> None:
        self.database = database
        self._path = path
        self._session = _session(path)
        self._lock = threading.RLock()
        with self._lock:
            self._session.query(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            self._session.query(f"USE `{database}`")

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        with self._lock:
            if params:
                return self._session.query(sql, fmt, params=format_params(params))
            return self._session.query(sql, fmt)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        raw = self._run(sql, "ArrowStream", params).bytes()
        if not raw:
            return QueryResult(columns=[], rows=[])
        table = pa.ipc.open_stream(raw).read_all()
        columns = table.column_names
        data = [table.column(i).to_pylist() for i in range(len(columns))]
        return QueryResult(columns=columns, rows=list(zip(*data, strict=True)))

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        body = b"\n".join(
            orjson.dumps(dict(zip(columns, row, strict=True)), default=_json_default) for row in rows
        )
        cols = ", ".join(f"`{c}`" for c in columns)
        sql = (
            f"INSERT INTO {table} ({cols}) SETTINGS date_time_input_format='best_effort', "
            "input_format_skip_unknown_fields=0 FORMAT JSONEachRow\n"
        )
        with self._lock:
            self._session.query(sql + body.decode())

    def export(self, sql: str, params: Mapping[str, Any], fmt: str, sink: IO[bytes]) -> int:
        # chDB returns whole results to Python; let the engine write the file instead and stream it.
        tmpdir = Path(tempfile.mkdtemp(prefix="segops-export-"))
        try:
            target = tmpdir / "out"
            self.command(
                f"INSERT INTO FUNCTION file({{__export_path:String}}, {fmt}) {sql}",
                {**params, "__export_path": str(target)},
            )
            written = 0
            with open(target, "rb") as source:
                while chunk := source.read(_COPY_CHUNK):
                    sink.write(chunk)
                    written += len(chunk)
            return written
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def check(self) -> None:
        self.query("SELECT 1")

    def close(self) -> None:
        """The shared session lives for the process; chDB flushes on each statement."""


def chdb_available() -> bool:
    try:
        import chdb  # noqa: F401
    except ImportError:
        return False
    return os.name == "posix"
