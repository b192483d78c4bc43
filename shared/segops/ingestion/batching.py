"""Group commit for the event writer: concurrent deliveries share one flush, each waits for its outcome.

A delivery calls `submit`; it joins the open group and blocks until that group's flush has run. The
first delivery of a group leads it: it waits until the group holds `max_rows` rows or `max_bytes`
bytes, or `max_wait_seconds` passed since it opened, and then until no other flush of this instance
is running, unless its group is full: a full group runs beside one running flush, never two. While a
flush runs, the next group keeps growing, so flushes get larger under load instead of more numerous
(measured: concurrent flushes of a few thousand rows each queued on the warehouse and made every
part, view block and lookup smaller); a group that reached its bounds cannot grow, and running it at
once puts its Python (claims, lookup, rows) beside the other flush's INSERT. It then closes the group
(the next delivery opens a new one) and runs the flush outside the lock. The flush returns one outcome per
delivery (None = its rows are durable, else the exception that delivery raises), so one delivery can
be refused (nacked) while the others of its flush are acknowledged. Nothing is acknowledged before its flush returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Flush = Callable[[Sequence[Item]], Sequence[BaseException | None]]


@dataclass(frozen=True)
class FlushBounds:
    max_rows: int
    max_bytes: int
    max_wait_seconds: float


@dataclass
class _Group(Generic[Item]):
    opened_at: float
    items: list[Item] = field(default_factory=list)
    rows: int = 0
    size: int = 0
    closed: bool = False
    outcomes: Sequence[BaseException | None] = ()
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit(Generic[Item]):
    """Gathers the items of concurrent `submit` calls into flushes bounded by rows, bytes and time."""

    def __init__(self, flush: Flush[Item], bounds: FlushBounds) -> None:
        self._flush = flush
        self.bounds = bounds
        self._cond = threading.Condition()
        self._open: _Group[Item] | None = None
        self._flushing = 0  # flushes running: at most two, the second of a full group

    def submit(self, item: Item, rows: int, size: int) -> None:
        """Block until the flush holding `item` has run; raise what it reported for `item`."""
        with self._cond:
            group = self._open
            leader = group is None
            if group is None:
                group = _Group(opened_at=time.monotonic())
                self._open = group
            index = len(group.items)
            group.items.append(item)
            group.rows += rows
            group.size += size
            if self._full(group):
                self._close(group)
            if leader:
                deadline = group.opened_at + self.bounds.max_wait_seconds
                while not group.closed and (remaining := deadline - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                # Open, the group takes what arrives meanwhile (up to its bounds); full, it may run
                # beside one other flush.
                while self._flushing >= 2 or (self._flushing and not self._full(group)):
                    self._cond.wait()
                if not group.closed:
                    self._close(group)
                self._flushing += 1
        if leader:
            self._run(group)
        else:
            group.done.wait()
        outcome = group.outcomes[index]
        if outcome is not None:
            raise outcome

    def _full(self, group: _Group[Item]) -> bool:
        return group.rows >= self.bounds.max_rows or group.size >= self.bounds.max_bytes

    def _close(self, group: _Group[Item]) -> None:
        group.closed = True
        if self._open is group:
            self._open = None
        self._cond.notify_all()

    def _run(self, group: _Group[Item]) -> None:
        try:
            outcomes = self._flush(group.items)
            if len(outcomes) != len(group.items):
                raise RuntimeError("a flush must report one outcome per item")
            group.outcomes = outcomes
        except BaseException as exc:  # the whole flush failed: every delivery of it is nacked
            group.outcomes = [exc] * len(group.items)
            raise
        finally:
            group.done.set()
            with self._cond:
                self._flushing -= 1
                self._cond.notify_all()
