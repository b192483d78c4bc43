"""What ClickHouse reports about the statements a unit of work ran, for usage metering.

Each backend reports every statement it runs to the collector active in the calling context (none:
nothing is kept). What each backend can report:

- chDB: the rows and bytes its storage read (`storage_rows_read`/`storage_bytes_read` of the result)
  and the elapsed time; CPU time is the process's CPU time (`time.process_time`) over the statement:
  the statement's own CPU plus whatever ran beside it (other Python threads, and the statements of
  the engine's other sessions; none in a compute function's single delivery). chDB reports no CPU
  time per statement.
- a ClickHouse server (clickhouse-connect): the `X-ClickHouse-Summary` response header — `read_rows`,
  `read_bytes`, `elapsed_ns`. The server reports CPU time only in `system.query_log`
  (`ProfileEvents['OSCPUVirtualTimeMicroseconds']`), written asynchronously after the query, so it
  is not available here: `cpu_us` stays 0 on a server.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class QueryStatistics:
    statements: int = 0
    rows_read: int = 0
    bytes_read: int = 0
    elapsed_us: int = 0
    cpu_us: int = 0


_current: ContextVar[QueryStatistics | None] = ContextVar("segops_query_statistics", default=None)


@contextmanager
def measuring() -> Iterator[QueryStatistics]:
    """Sum the statistics of every statement run in this context until the block ends."""
    statistics = QueryStatistics()
    token = _current.set(statistics)
    try:
        yield statistics
    finally:
        _current.reset(token)


def active() -> bool:
    """Whether a statement run now is measured (backends skip the extra work otherwise)."""
    return _current.get() is not None


def record(rows_read: int, bytes_read: int, elapsed_us: int, cpu_us: int = 0) -> None:
    statistics = _current.get()
    if statistics is None:
        return
    statistics.statements += 1
    statistics.rows_read += rows_read
    statistics.bytes_read += bytes_read
    statistics.elapsed_us += elapsed_us
    statistics.cpu_us += cpu_us


def record_summary(summary: Mapping[str, object]) -> None:
    """One statement's `X-ClickHouse-Summary` (string values, as the server sends them)."""

    def number(name: str) -> int:
        value = summary.get(name)
        return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else 0

    record(number("read_rows"), number("read_bytes"), number("elapsed_ns") // 1000)
