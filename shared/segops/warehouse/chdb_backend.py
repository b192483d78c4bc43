from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from segops.warehouse.base import QueryResult, render_settings
from segops.warehouse.params import format_params

_COPY_CHUNK = 1 << 20


class _SharedSession:
    """chDB allows one data directory per process; warehouses on other databases share its session.

    Statements are serialised: a chDB session is not re-entrant, and `USE` is session state.
    """

    def __init__(self, path: Path) -> None:
        from chdb import session as chdb_session

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.session = chdb_session.Session(str(path))
        self.lock = threading.RLock()
        self.database: str | None = None

    def run(self, database: str, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        with self.lock:
            if self.database != database:
                self.session.query(f"USE `{database}`")
                self.database = database
            if params:
                return self.session.query(sql, fmt, params=format_params(params))
            return self.session.query(sql, fmt)


_shared: _SharedSession | None = None
_shared_lock = threading.Lock()


def _session(path: Path) -> _SharedSession:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = _SharedSession(path.resolve())
        elif _shared.path != path.resolve():
            raise RuntimeError(f"chDB already serves {_shared.path} in this process; cannot open {path}")
        return _shared


def _json_default(value: Any) -> Any:
    return str(value)


class ChdbWarehouse:
    """ClickHouse's engine in-process (`make dev`, tests)."""

    def __init__(self, path: Path, database: str = "segops") -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError("database name must be alphanumeric")
        self.database = database
        self._shared = _session(path)
        with self._shared.lock:
            self._shared.session.query(f"CREATE DATABASE IF NOT EXISTS `{database}`")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        raw = self._shared.run(self.database, sql, "ArrowStream", params).bytes()
        if not raw:
            return QueryResult(columns=[], rows=[])
        table = pa.ipc.open_stream(raw).read_all()
        columns = table.column_names
        data = [table.column(i).to_pylist() for i in range(len(columns))]
        return QueryResult(columns=columns, rows=list(zip(*data, strict=True)))

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._shared.run(self.database, sql, "CSV", params)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        if not rows:
            return
        body = b"\n".join(orjson.dumps(dict(zip(columns, row, strict=True)), default=_json_default) for row in rows)
        cols = ", ".join(f"`{c}`" for c in columns)
        clause = render_settings({"date_time_input_format": "best_effort", **(settings or {})})
        # Data after FORMAT is parsed as data, never as SQL: this is still a bound insert.
        sql = f"INSERT INTO `{table}` ({cols}) SETTINGS {clause} FORMAT JSONEachRow\n"
        self._shared.run(self.database, sql + body.decode(), "CSV", None)

    def export(self, sql: str, params: Mapping[str, Any], fmt: str, sink: IO[bytes]) -> int:
        # chDB hands whole results to Python; let the engine write the file, then stream it.
        tmpdir = Path(tempfile.mkdtemp(prefix="segops-export-"))
        try:
            target = tmpdir / "out"
            self.command(
                f"INSERT INTO FUNCTION file({{export_path:String}}, {fmt}) {sql}",
                {**params, "export_path": str(target)},
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
        """The shared session lives as long as the process; every statement is already durable."""
