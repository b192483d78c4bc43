"""The per-process usage buffer: billable units counted in memory, flushed to the warehouse in batches.

Two kinds of unit (docs/operations.md § Usage metering):
- `count`: additive units of the hot path (API calls, accepted and refused events). A request is
  answered once, so counting it where it is answered counts it once; an event is accepted where the
  event writer first stores it (`units.events_accepted`), once per event id. Counts are summed per tenant,
  hour, metric and dimension in memory; a flush is one INSERT into `usage` with a deduplication token
  of its own, and a flush that failed is retried later with the same rows and token, so ClickHouse
  drops the copy of a retry whose first attempt did land.
- `unit`: units with an idempotency key of their own (a compute's ids, an export id, a connector
  sync's change), written to `usage_units` (ReplacingMergeTree on the key, largest value kept):
  recording a unit again after a redelivery or a retry replaces it.
Events stored are not counted here: the warehouse counts them itself (`usage_events_stored_mv`).

A crash loses at most the counts of the last `metering_flush_seconds` (never counts one twice).
A stopping process closes its meter before its warehouse (`close_meter`): the periodic flusher
stops, then one last flush writes what is left, so no flush ever runs against closed backends.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from segops import clock
from segops.runtime import Runtime
from segops.warehouse.base import Warehouse

log = logging.getLogger("segops.metering")

Metric = Literal[
    "api_calls",
    "events_accepted",
    "events_refused",
    "events_stored",
    "computes",
    "compute_rows_read",
    "compute_bytes_read",
    "compute_cpu_us",
    "compute_elapsed_us",
    "exports",
    "export_rows",
    "export_bytes",
    "connector_syncs",
    "connector_users_pushed",
    "sandbox_calls",
    "ai_drafts",
]
METRICS: tuple[Metric, ...] = Metric.__args__  # type: ignore[attr-defined]

USAGE_COLUMNS = ("tenant_id", "hour", "metric", "dimension", "value")
UNIT_COLUMNS = ("tenant_id", "metric", "dimension", "unit_id", "hour", "value")
# Failed flushes kept for retry (each at most one flush interval of counts); beyond, the oldest is
# dropped with an error log rather than letting memory grow through a long warehouse outage.
MAX_PENDING_FLUSHES = 720


def hour_of(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class _Flush:
    token: str
    counts: list[tuple[int, datetime, str, str, int]]
    units: list[tuple[int, str, str, str, datetime, int]]


class Meter:
    """One process's buffer for one warehouse."""

    def __init__(self, warehouse: Warehouse, enabled: bool = True) -> None:
        self.warehouse = warehouse
        self.enabled = enabled
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, datetime, str, str], int] = {}
        self._units: dict[tuple[int, str, str, str], tuple[datetime, int]] = {}
        self._flush_lock = threading.Lock()
        self._pending: list[_Flush] = []
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._closed = False

    def start(self, seconds: float) -> None:
        """Flush every `seconds` on a daemon thread, until `close`."""
        self._flusher = threading.Thread(
            target=_flush_periodically,
            args=(weakref.ref(self), self._stop, seconds),
            name="segops-metering",
            daemon=True,
        )
        self._flusher.start()

    def close(self) -> None:
        """Stop the periodic flusher, then write what is left: the meter's last write, made before its
        warehouse closes. Later units are dropped (a shutdown-order bug, logged once)."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._flush_lock:
            if self._closed:
                return
            self._closed = True
            self._take()
            failure = self._write_pending()
            if failure is not None:
                log.error(
                    "usage not written at shutdown",
                    extra={"pending": len(self._pending), "error": type(failure).__name__},
                )

    def count(self, tenant_id: int, metric: Metric, value: int = 1, dimension: str = "") -> None:
        """Add `value` units to the current hour (a dict update under a lock: the hot path's whole cost)."""
        if not self.enabled or value <= 0:
            return
        key = (tenant_id, hour_of(clock.now()), metric, dimension)
        with self._lock:
            if self._closed:
                self._late()
                return
            self._counts[key] = self._counts.get(key, 0) + value

    def unit(self, tenant_id: int, unit_id: str, measures: Mapping[Metric, int], dimension: str = "") -> None:
        """Record the unit `unit_id`: its measures replace any earlier recording of the same id where
        they are larger (as `usage_units` does across processes)."""
        if not self.enabled:
            return
        hour = hour_of(clock.now())
        with self._lock:
            if self._closed:
                self._late()
                return
            for metric, value in measures.items():
                key = (tenant_id, metric, dimension, unit_id)
                earlier = self._units.get(key)
                if earlier is None or value > earlier[1]:
                    self._units[key] = (hour, max(0, value))

    def _late(self) -> None:
        """A unit counted after `close` (lock held): dropped, and said once (then metering is off)."""
        if self.enabled:
            self.enabled = False
            log.warning("usage counted after the meter closed: dropped")

    def flush(self) -> bool:
        """Write what was counted; False when the warehouse refused (kept and retried next time)."""
        with self._flush_lock:
            if self._closed:
                return not self._pending  # `close` made the last write: the warehouse may be gone
            self._take()
            failure = self._write_pending()
            if failure is None:
                return True
            log.warning(
                "usage flush failed; retried later",
                extra={"pending": len(self._pending), "error": type(failure).__name__},
            )
            if len(self._pending) > MAX_PENDING_FLUSHES:
                lost = self._pending.pop(0)
                log.error("usage flush dropped after repeated failures", extra={"rows": len(lost.counts)})
            return False

    def _take(self) -> None:
        """Move the counts into a pending flush (flush lock held)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            units, self._units = self._units, {}
        if counts or units:
            self._pending.append(
                _Flush(
                    uuid.uuid4().hex,
                    [(*key, value) for key, value in counts.items()],
                    [(*key, hour, value) for key, (hour, value) in units.items()],
                )
            )

    def _write_pending(self) -> Exception | None:
        """Write the pending flushes oldest first; the warehouse's refusal stops it (flush lock held)."""
        while self._pending:
            try:
                self._write(self._pending[0])
            except Exception as exc:
                return exc
            self._pending.pop(0)
        return None

    def _write(self, batch: _Flush) -> None:
        if batch.counts:
            self.warehouse.insert(
                "usage", USAGE_COLUMNS, batch.counts, {"insert_deduplication_token": f"usage-{batch.token}"}
            )
        if batch.units:
            # A repeated unit row is harmless (ReplacingMergeTree), so no token is needed here.
            self.warehouse.insert("usage_units", UNIT_COLUMNS, batch.units)


def _flush_periodically(meter: weakref.ref[Meter], stop: threading.Event, seconds: float) -> None:
    while not stop.wait(seconds):
        current = meter()
        if current is None:
            return
        current.flush()
        del current


def _close_at_exit(meter: weakref.ref[Meter]) -> None:
    current = meter()
    if current is not None:
        current.close()


# One meter per live runtime, by identity (a `Runtime` is not hashable); an entry leaves with its runtime.
_meters: dict[int, Meter] = {}
_meters_lock = threading.Lock()
# Meters whose runtime is gone, closed on a thread of their own. `_forget` is a runtime's finalizer, so
# the garbage collector runs it at any allocation on any thread: inside `meter_for` with `_meters_lock`
# held (a hung test session: the lock taken again on the same thread), or on the warehouse's session
# thread (whose own close would then wait for that thread). So it takes no lock and writes nothing; a
# SimpleQueue's `put` is safe from a finalizer.
_forgotten: queue.SimpleQueue[Meter] = queue.SimpleQueue()
_closer: threading.Thread | None = None


def _close_forgotten() -> None:
    while True:
        _forgotten.get().close()


def meter_for(runtime: Runtime) -> Meter:
    """The runtime's meter: built on first use, with a daemon thread flushing it every
    `metering_flush_seconds`, and closed by `close_meter`, at interpreter exit or when the runtime goes."""
    global _closer
    with _meters_lock:
        meter = _meters.get(id(runtime))
        if meter is None:
            if _closer is None:
                _closer = threading.Thread(target=_close_forgotten, name="segops-metering-close", daemon=True)
                _closer.start()
            meter = _meters[id(runtime)] = Meter(runtime.warehouse, runtime.settings.metering)
            meter.start(runtime.settings.metering_flush_seconds)
            atexit.register(_close_at_exit, weakref.ref(meter))
            weakref.finalize(runtime, _forget, id(runtime))
        return meter


def close_meter(runtime: Runtime) -> None:
    """Close the runtime's meter, if it has one (`Meter.close`): a stopping process does this before it
    closes the runtime's warehouse. The closed meter stays the runtime's until the runtime goes."""
    with _meters_lock:
        meter = _meters.get(id(runtime))
    if meter is not None:
        meter.close()


def _forget(runtime_id: int) -> None:
    """A runtime's finalizer (see `_forgotten`): one dict operation, atomic under the GIL, and a put."""
    meter = _meters.pop(runtime_id, None)
    if meter is not None:
        _forgotten.put(meter)
