from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa

from segops.warehouse import statistics
from segops.warehouse.base import QueryResult, render_settings
from segops.warehouse.identifiers import allowed_identifier, quote_identifier, quote_identifiers
from segops.warehouse.params import format_params

_COPY_CHUNK = 1 << 20

T = TypeVar("T")


# The engine's server configuration (chDB reads a ClickHouse config file at session start). Above
# `concurrent_part_removal_threshold` (100) outdated parts, MergeTree removes them at once on up to 128
# threads of the engine's global pool, which then keeps them idle for good (up to 1,000; chDB ignores
# `max_thread_pool_free_size`); each of them that later runs a statement's work keeps three
# `/proc/<pid>/task/<tid>/` files open. chDB drops merged parts at once (`old_parts_lifetime` 0), so
# steady ingestion crosses that threshold within a minute: parts are removed one after another instead.
_ENGINE_CONFIG = """<clickhouse>
  <merge_tree>
    <concurrent_part_removal_threshold>1000000000</concurrent_part_removal_threshold>
  </merge_tree>
</clickhouse>
"""


# Sessions of the process's engine, each on a thread of its own: chDB (4.4) runs the statements of
# different sessions on one data directory in parallel and those of one session one at a time. Four:
# a long compute or export, the writer's INSERT, and the short reads beside them (membership misses,
# the console's and the stats' queries) each find a free session instead of queueing behind another.
SESSIONS = 4


class _Lane:
    """One chDB session and the thread that runs its statements (`USE` is session state)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.database: str | None = None

    def use(self, database: str) -> None:
        """Make `database` this session's current one (a `USE` only when it is not already)."""
        if self.database != database:
            self.session.query(f"USE {quote_identifier(database)}")
            self.database = database


class _SharedSession:
    """chDB allows one data directory per process; warehouses on other databases share its sessions.

    Statements run on a few long-lived threads of their own (`call`), each holding one chDB session
    (a lane): a session is not re-entrant and `USE` is session state, while the engine runs the
    statements of different sessions in parallel, so a long compute or a stats query does not hold
    up an INSERT. Long-lived threads, because chDB keeps three `/proc/<pid>/task/<tid>/` files open
    for every thread that has run a statement, for as long as that thread lives: run on the callers'
    threads, every HTTP connection thread and bus worker would hold its own three.
    """

    def __init__(self, path: Path) -> None:
        from chdb import session as chdb_session

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.closed = False
        self._state = threading.Lock()
        self._closing = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[_Lane], Any], Future[Any]] | None] = queue.SimpleQueue()
        config = path / "segops-engine.xml"
        config.write_text(_ENGINE_CONFIG)
        self._threads: list[threading.Thread] = []
        for index in range(SESSIONS):
            opened: Future[_Lane] = Future()
            thread = threading.Thread(
                target=self._serve,
                args=(lambda: chdb_session.Session(f"{path}?config-file={config}"), opened),
                name=f"segops-chdb-{index}",
                daemon=True,
            )
            thread.start()
            try:
                opened.result()
            except BaseException:
                self.close()  # the sessions already open
                raise
            self._threads.append(thread)
        # Close while the interpreter is still whole: left to the session's finalizer, the close
        # races chDB's own global shutdown and the process sometimes dies with SIGSEGV at exit
        # (a dev server stopped by SIGTERM must exit 0). atexit runs this before that teardown, while
        # the (daemon) session threads still run.
        atexit.register(self.close)

    def _serve(self, open_session: Callable[[], Any], opened: Future[_Lane]) -> None:
        try:
            lane = _Lane(open_session())
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(lane)
        while (job := self._jobs.get()) is not None:
            work, done = job
            try:
                done.set_result(work(lane))
            except BaseException as exc:  # handed to the caller's thread, which raises it
                done.set_exception(exc)
        with self._closing:  # one session at a time: the engine shuts down with the last one
            lane.session.close()

    def call(self, work: Callable[[_Lane], T]) -> T:
        """`work(lane)` run on the thread of the first free session."""
        done: Future[T] = Future()
        with self._state:
            if self.closed:
                raise RuntimeError(f"the chDB session on {self.path} is closed")
            self._jobs.put((work, done))
        return done.result()

    def close(self) -> None:
        with self._state:
            if self.closed:
                return
            self.closed = True
            for _ in self._threads:
                self._jobs.put(None)  # each lane takes one, closes its session and ends
        for thread in self._threads:
            thread.join()

    def run(self, database: str, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        def statement(lane: _Lane) -> tuple[Any, float]:
            # The process's CPU time over this statement, not over the wait for its turn (it includes
            # what other sessions and Python threads burnt meanwhile: statistics.py).
            cpu_started = time.process_time()
            return self._statement(lane, database, sql, fmt, params), time.process_time() - cpu_started

        result, cpu_seconds = self.call(statement)
        if statistics.active():
            statistics.record(
                result.storage_rows_read(),
                result.storage_bytes_read(),
                round(result.elapsed() * 1_000_000),
                round(cpu_seconds * 1_000_000),
            )
        return result

    @staticmethod
    def _statement(lane: _Lane, database: str, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        session = lane.session
        lane.use(database)
        try:
            if params:
                return session.query(sql, fmt, params=format_params(params))
            return session.query(sql, fmt)
        except Exception:
            # chDB (26.9) hands the partial result of a statement that failed mid-stream (a memory
            # or time limit, a throwIf) to the session's NEXT query as that query's answer; a
            # throwaway statement takes it instead.
            with contextlib.suppress(Exception):
                session.query("SELECT 1", fmt)
            raise


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


_DATETIME = re.compile(r"^(?:Nullable\()?DateTime(?:\('(?P<tz>[^']+)'\))?\)?$")


def _from_epoch(seconds: int, tz: str | None) -> datetime:
    """Aware in the declared zone, else naive UTC (what clickhouse-connect returns with tz_mode=schema)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.astimezone(ZoneInfo(tz)) if tz else moment.replace(tzinfo=None)


Convert = Callable[[Any], Any]


def _python_shape(arrow_type: pa.DataType) -> Convert | None:
    """What clickhouse-connect returns, from what Arrow gives: unnamed `Tuple` → tuple (Arrow: a
    struct with fields "1", "2", ...), `Map` → dict (Arrow: a list of pairs), recursively.
    None when the column needs no conversion."""
    if pa.types.is_struct(arrow_type):
        names = [arrow_type.field(i).name for i in range(arrow_type.num_fields)]
        children = [_python_shape(arrow_type.field(i).type) for i in range(arrow_type.num_fields)]
        if names == [str(i + 1) for i in range(len(names))]:
            return lambda v: None if v is None else tuple(_apply(c, v[n]) for n, c in zip(names, children, strict=True))
        if any(children):
            return lambda v: None if v is None else {n: _apply(c, v[n]) for n, c in zip(names, children, strict=True)}
        return None
    if pa.types.is_map(arrow_type):
        key, item = _python_shape(arrow_type.key_type), _python_shape(arrow_type.item_type)
        return lambda v: None if v is None else {_apply(key, k): _apply(item, x) for k, x in v}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        element = _python_shape(arrow_type.value_type)
        if element is not None:
            return lambda v: None if v is None else [element(x) for x in v]
    return None


def _apply(convert: Convert | None, value: Any) -> Any:
    return value if convert is None else convert(value)


def shutdown_embedded() -> None:
    """Close the process's chDB session now (every statement is already durable).

    Callers that own the process (the dev server, the test runner) then leave with `os._exit`:
    chDB's C++ static destructors occasionally crash at interpreter exit after a clean close
    ("ShutdownTablesThreadPool is not initialized", then SIGSEGV), which would turn a clean stop
    into a failure.
    """
    with _shared_lock:
        if _shared is not None:
            _shared.close()


def exit_process(code: int) -> NoReturn:
    """Leave a process this program owns (the dev server, an operator command) with `code`, once
    chDB is closed and the logs and streams are flushed, without chDB's static destructors."""
    shutdown_embedded()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _json_default(value: Any) -> Any:
    return str(value)


class ChdbWarehouse:
    """ClickHouse's engine in-process (`make dev`, tests)."""

    def __init__(self, path: Path, database: str = "segops") -> None:
        self.database = allowed_identifier(database)
        self._shared = _session(path)
        self._shared.run("default", f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}", "CSV", None)

    # chDB has no custom settings or row policies: `tenant_id` is accepted for the protocol and unused
    # (the application check in `TenantWarehouse` is the isolation here; docs/deploy.md).
    def query(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> QueryResult:
        raw = self._shared.run(self.database, sql, "ArrowStream", params).bytes()
        if not raw:
            return QueryResult(columns=[], rows=[])
        table = pa.ipc.open_stream(raw).read_all()
        columns = table.column_names
        data = [table.column(i).to_pylist() for i in range(len(columns))]
        for index, field in enumerate(table.schema):
            convert = _python_shape(field.type)
            if convert is not None:
                data[index] = [convert(v) for v in data[index]]
        if any(pa.types.is_uint32(field.type) for field in table.schema):
            for index, tz in self._datetime_columns(sql, params).items():
                data[index] = [None if v is None else _from_epoch(v, tz) for v in data[index]]
        return QueryResult(columns=columns, rows=list(zip(*data, strict=True)))

    def _datetime_columns(self, sql: str, params: Mapping[str, Any] | None) -> dict[int, str | None]:
        """Positions (and time zones) of `DateTime` columns: ClickHouse's Arrow output renders them as
        plain UInt32, so the declared types are looked up (only when a UInt32 column is present)."""
        described = self._shared.run(self.database, f"DESCRIBE ({sql})", "TabSeparatedRaw", params).bytes()
        found: dict[int, str | None] = {}
        for index, line in enumerate(described.decode().splitlines()):
            match = _DATETIME.match(line.split("\t")[1])
            if match:
                found[index] = match.group("tz")
        return found

    def command(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> None:
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
        width = len(columns)
        if set(map(len, rows)) != {width}:
            raise ValueError(f"every row must have {width} values, one per column")
        # Column-major (JSONCompactColumns): one orjson call for the whole block instead of one per
        # row, and no keys for chDB to match; measured ~1.6x cheaper than JSONCompactEachRow.
        body = orjson.dumps([list(column) for column in zip(*rows, strict=True)], default=_json_default)
        clause = render_settings({"date_time_input_format": "best_effort", **(settings or {})})
        # Data after FORMAT is parsed as data, never as SQL: this is still a bound insert.
        target = f"{quote_identifier(table)} ({quote_identifiers(columns)})"
        sql = f"INSERT INTO {target} SETTINGS {clause} FORMAT JSONCompactColumns\n"
        self._shared.run(self.database, sql + body.decode(), "CSV", None)

    def export(
        self, sql: str, params: Mapping[str, Any], fmt: str, sink: IO[bytes], tenant_id: int | None = None
    ) -> int:
        # chDB hands whole results to Python; let the engine write the file, then stream it.
        tmpdir = Path(tempfile.mkdtemp(prefix="segops-export-"))
        try:
            target = tmpdir / "out"
            self.command(
                f"INSERT INTO FUNCTION file({{export_path:String}}, {allowed_identifier(fmt)}) {sql}",
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
