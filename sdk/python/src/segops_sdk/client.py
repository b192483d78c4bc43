"""`SegOpsClient`: buffers events in memory and sends them in batches from one background thread."""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from segops_sdk import retry
from segops_sdk.errors import SegOpsClosedError, SegOpsError
from segops_sdk.transport import BATCH_PATH, Outcome, post_batch

# The API accepts at most this many events per batch request.
MAX_BATCH_EVENTS = 500

log = logging.getLogger("segops_sdk")


@dataclass(frozen=True, slots=True)
class _Queued:
    """An event serialised at call time: later mutation of the caller's payload changes nothing."""

    seq: int
    json: bytes


def _log_error(error: SegOpsError) -> None:
    log.warning("%s", error.message)


class SegOpsClient:
    """Thread-safe. `track`/`identify` only buffer; a daemon thread sends every `flush_interval`
    seconds or as soon as `flush_at` events are buffered, and `shutdown()` runs at interpreter exit.

    `on_error` is called from that thread for every loss (see `SegOpsError.kind`); by default the
    loss is logged on the `segops_sdk` logger.

    Share one client per process: each one has its own thread. A client that is dropped without
    `shutdown()` is still collected: its thread sends what was buffered, then ends.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        flush_interval: float = 5.0,
        flush_at: int = 20,
        max_queue_size: int = 10_000,
        max_retries: int = 5,
        timeout: float = 10.0,
        on_error: Callable[[SegOpsError], None] | None = None,
    ) -> None:
        if not isinstance(api_url, str) or urlsplit(api_url).scheme not in ("http", "https"):
            raise TypeError(f"api_url must be an http(s) URL, got {api_url!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be a non-negative integer")
        self._sender = _Sender(
            batch_url=api_url.rstrip("/") + BATCH_PATH,
            api_key=_non_empty(api_key, "api_key"),
            flush_interval=_positive(flush_interval, "flush_interval"),
            flush_at=_positive_int(flush_at, "flush_at"),
            max_queue_size=_positive_int(max_queue_size, "max_queue_size"),
            max_retries=max_retries,
            timeout=_positive(timeout, "timeout"),
            on_error=on_error or _log_error,
        )
        # The sender (and its thread) never refer back to the client, so a client dropped without
        # `shutdown()` is collected; its sender then sends what is buffered and its thread ends.
        weakref.finalize(self, self._sender.close).atexit = False

    @property
    def queued(self) -> int:
        """Events buffered and not yet handed to a request."""
        return self._sender.queued

    @property
    def dropped(self) -> int:
        """Events dropped so far because the buffer was full."""
        return self._sender.dropped

    def track(
        self,
        *,
        user_id: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
        occurred_at: datetime | str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Buffers one event; `occurred_at` and `message_id` are fixed now, so retries never double-count."""
        event: dict[str, Any] = {
            "user_id": _non_empty(user_id, "user_id"),
            "event_type": _non_empty(event_type, "event_type"),
            "occurred_at": _timestamp(occurred_at),
            "message_id": str(uuid.uuid4()) if message_id is None else _non_empty(message_id, "message_id"),
        }
        if payload is not None:
            event["payload"] = _mapping(payload, "payload")
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        self._sender.enqueue(data)

    def identify(
        self,
        *,
        user_id: str,
        traits: Mapping[str, Any],
        occurred_at: datetime | str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Sets user traits: a `context_identified` event whose payload is the traits."""
        self.track(
            user_id=user_id,
            event_type="context_identified",
            payload=_mapping(traits, "traits"),
            occurred_at=occurred_at,
            message_id=message_id,
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Sends everything buffered so far and waits until each of those events was accepted or given
        up (and reported). Returns False if `timeout` seconds passed first."""
        return self._sender.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flushes and stops the sender; later `track`/`identify`/`flush` calls raise `SegOpsClosedError`.
        Idempotent. Returns False if `timeout` seconds passed before everything was sent or given up."""
        return self._sender.shutdown(timeout)


# Every sender whose client is alive or whose thread is still sending, for the exit and fork hooks.
# Weak: neither hook keeps a client (or a finished sender) alive.
_senders: weakref.WeakSet[_Sender] = weakref.WeakSet()


class _Sender:
    """The buffer and the thread that empties it. Refers to no client: see `SegOpsClient.__init__`."""

    def __init__(
        self,
        *,
        batch_url: str,
        api_key: str,
        flush_interval: float,
        flush_at: int,
        max_queue_size: int,
        max_retries: int,
        timeout: float,
        on_error: Callable[[SegOpsError], None],
    ) -> None:
        self._batch_url = batch_url
        self._api_key = api_key
        self._flush_interval = flush_interval
        self._flush_at = flush_at
        self._max_queue_size = max_queue_size
        self._max_retries = max_retries
        self._timeout = timeout
        self._on_error = on_error

        self._cond = threading.Condition()
        self._queue: deque[_Queued] = deque()
        self._in_flight: list[_Queued] = []
        self._last_seq = 0
        self._flush_target = 0  # every event with seq <= this is due now
        self._deadline: float | None = None  # monotonic time at which the buffer is due
        self._dropped = 0
        self._dropped_unreported = 0
        self._closed = False
        self._worker: threading.Thread | None = None
        _senders.add(self)

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def dropped(self) -> int:
        with self._cond:
            return self._dropped

    def enqueue(self, data: bytes) -> None:
        with self._cond:
            if self._closed:
                raise SegOpsClosedError("track")
            if len(self._queue) >= self._max_queue_size:
                # Dropped silently here, reported (with the count) by the sender before its next batch.
                self._queue.popleft()
                self._dropped += 1
                self._dropped_unreported += 1
            self._last_seq += 1
            self._queue.append(_Queued(self._last_seq, data))
            if self._deadline is None:
                self._deadline = time.monotonic() + self._flush_interval
            self._ensure_worker()
            if len(self._queue) >= self._flush_at:
                self._cond.notify_all()

    def flush(self, timeout: float | None) -> bool:
        with self._cond:
            if self._closed:
                raise SegOpsClosedError("flush")
            target = self._last_seq
            if target < self._first_unsettled_seq():
                return True
            self._flush_target = max(self._flush_target, target)
            self._ensure_worker()
            self._cond.notify_all()
            return self._cond.wait_for(lambda: target < self._first_unsettled_seq(), timeout)

    def close(self) -> None:
        """Stops taking events; the thread sends what is buffered, then ends. Does not wait: it also runs
        when the client is garbage-collected, possibly on the sender thread itself."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def shutdown(self, timeout: float | None) -> bool:
        self.close()
        with self._cond:
            worker = self._worker
        if worker is None:
            return True
        worker.join(timeout)
        return not worker.is_alive()

    def after_fork_in_child(self) -> None:
        """The child of `os.fork()` inherits this object but not its thread, and the lock may have been
        held by a thread of the parent at the fork. Everything is made new, and the buffer starts empty:
        the parent still holds (and sends) the events buffered before the fork, so the child sending its
        copies would count them twice. Events the child tracks are sent by a thread of its own."""
        self._cond = threading.Condition()
        self._queue = deque()
        self._in_flight = []
        self._deadline = None
        self._dropped_unreported = 0  # the parent reports them
        self._worker = None

    # --- the sender thread -------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="segops-sdk-sender", daemon=True)
            self._worker.start()

    def _first_unsettled_seq(self) -> float:
        if self._in_flight:
            return self._in_flight[0].seq
        return self._queue[0].seq if self._queue else math.inf

    def _due(self) -> bool:
        if not self._queue:
            return False
        return (
            len(self._queue) >= self._flush_at
            or self._closed
            or self._flush_target >= self._queue[0].seq
            or (self._deadline is not None and time.monotonic() >= self._deadline)
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due() and not self._closed:
                    self._cond.wait(None if self._deadline is None else max(self._deadline - time.monotonic(), 0.0))
                dropped = self._take_dropped()
                batch = self._take_batch() if self._due() else []
            self._report_dropped(dropped)
            if not batch:
                return  # shut down with nothing left to send
            self._deliver(batch)
            with self._cond:
                self._in_flight = []
                self._cond.notify_all()

    def _take_batch(self) -> list[_Queued]:
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH_EVENTS))]
        self._in_flight = batch
        if not self._queue:
            self._deadline = None
        return batch

    def _take_dropped(self) -> int:
        count, self._dropped_unreported = self._dropped_unreported, 0
        return count

    def _report_dropped(self, count: int) -> None:
        if count:
            message = (
                f"SegOps buffer full (max_queue_size {self._max_queue_size}): dropped the {count} oldest "
                f"event(s), {self._dropped} in total"
            )
            self._report(SegOpsError("queue_overflow", message, event_count=count))

    def _deliver(self, batch: list[_Queued]) -> None:
        body = b'{"events":[' + b",".join(e.json for e in batch) + b"]}"
        attempt = 0
        while True:
            outcome = post_batch(self._batch_url, self._api_key, body, self._timeout)
            if outcome.type == "accepted":
                if outcome.skipped:
                    message = f"SegOps API skipped {outcome.skipped} invalid event(s) of a batch of {len(batch)}"
                    self._report(SegOpsError("skipped", message, event_count=outcome.skipped, status=outcome.status))
                return
            if outcome.type == "too_large" and len(batch) > 1:
                # The body exceeded the server's limit: halve it until each part fits.
                half = (len(batch) + 1) // 2
                self._deliver(batch[:half])
                self._deliver(batch[half:])
                return
            if outcome.type in ("too_large", "rejected"):
                self._report_rejected(outcome, len(batch))
                return
            if attempt >= self._max_retries:
                message = f"SegOps gave up on {len(batch)} event(s) after {attempt + 1} attempt(s): {outcome.reason}"
                self._report(
                    SegOpsError(
                        "retries_exhausted",
                        message,
                        event_count=len(batch),
                        status=outcome.status,
                        code=outcome.code,
                        details=outcome.details,
                    )
                )
                return
            retry.wait(retry.retry_delay(attempt, outcome.retry_after))
            attempt += 1

    def _report_rejected(self, outcome: Outcome, event_count: int) -> None:
        message = f"SegOps API rejected {event_count} event(s) with HTTP {outcome.status}: {outcome.reason}"
        self._report(
            SegOpsError(
                "rejected",
                message,
                event_count=event_count,
                status=outcome.status,
                code=outcome.code,
                details=outcome.details,
            )
        )

    def _report(self, error: SegOpsError) -> None:
        try:
            self._on_error(error)
        except Exception:
            # A throwing callback must not stop delivery of the remaining events.
            log.exception("SegOps on_error callback raised")


def _shutdown_all_at_exit() -> None:
    """Interpreter exit: flush and stop every client still alive, and let every dropped one finish."""
    for sender in list(_senders):
        sender.shutdown(None)


def _after_fork_in_child() -> None:
    for sender in list(_senders):
        sender.after_fork_in_child()


atexit.register(_shutdown_all_at_exit)
if hasattr(os, "register_at_fork"):  # every platform with os.fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _non_empty(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string")
    return value


def _mapping(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping")
    return dict(value)


def _timestamp(value: datetime | str | None) -> str:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat(timespec="milliseconds") + "Z"
        return value.isoformat(timespec="milliseconds")  # naive: the API reads it as UTC
    return _non_empty(value, "occurred_at")


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return float(value)


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value
