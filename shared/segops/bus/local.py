from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from segops.bus.base import BusMessage, dead_letter_topic
from segops.manifest import RetryPolicy

log = logging.getLogger(__name__)

Handler = Callable[[BusMessage], None]


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    handler: Handler
    # Deliveries of this subscription at once (a function's manifest `concurrency`).
    concurrency: int = 1
    # A function's manifest retry policy; else the bus's own.
    retry: RetryPolicy | None = None


class LocalBus:
    """In-process bus with Pub/Sub semantics: every subscription gets every message at least once;
    a handler that raises is retried with exponential backoff; after its subscription's last attempt
    (the manifest's retry policy of its function, else `max_attempts`) the message goes to
    `<topic>-dead-letter`. Once started, `concurrency` workers deliver at the same time, each
    subscription up to its own `concurrency`, as Pub/Sub push to a function instance does (`drain`
    delivers one at a time)."""

    def __init__(
        self,
        max_attempts: int = 5,
        retry_base_seconds: float = 0.5,
        retry_max_seconds: float = 60,
        concurrency: int = 1,
    ) -> None:
        self.retry = RetryPolicy(max_attempts, retry_base_seconds, retry_max_seconds)
        self.concurrency = concurrency
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._pending: list[tuple[float, int, Subscription, BusMessage]] = []
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._active: dict[str, int] = {}
        self._workers: list[threading.Thread] = []
        self._stopping = False
        self.dead_letters: deque[BusMessage] = deque(maxlen=1000)
        self.published_count = 0
        # Called with each topic before it is published to; raises where the publisher may not (as
        # Pub/Sub refuses a publisher without roles/pubsub.publisher on the topic).
        self.authorize: Callable[[str], None] | None = None

    def subscribe(
        self, topic: str, name: str, handler: Handler, concurrency: int = 1, retry: RetryPolicy | None = None
    ) -> None:
        with self._cond:
            self._subscriptions.setdefault(topic, []).append(Subscription(name, topic, handler, concurrency, retry))

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        if self.authorize is not None:
            self.authorize(topic)
        message = BusMessage(topic=topic, data=data, attributes=dict(attributes or {}), message_id=uuid.uuid4().hex)
        with self._cond:
            self.published_count += 1
            subscriptions = self._subscriptions.get(topic, [])
            for subscription in subscriptions:
                self._enqueue(time.monotonic(), subscription, message)
            self._cond.notify(len(subscriptions))
        return message.message_id

    def _enqueue(self, due: float, subscription: Subscription, message: BusMessage) -> None:
        heapq.heappush(self._pending, (due, next(self._sequence), subscription, message))

    def _deliver(self, subscription: Subscription, message: BusMessage) -> None:
        try:
            subscription.handler(message)
        except Exception as exc:  # any failure is a nack, exactly as Pub/Sub push treats a non-2xx
            self._nack(subscription, message, exc)

    def _nack(self, subscription: Subscription, message: BusMessage, exc: Exception) -> None:
        log.warning(
            "delivery failed",
            extra={
                "topic": message.topic,
                "subscription": subscription.name,
                "attempt": message.delivery_attempt,
                "error": type(exc).__name__,
            },
        )
        retry = subscription.retry or self.retry
        if message.delivery_attempt >= retry.max_attempts:
            self.dead_letters.append(message)
            attributes = {
                **message.attributes,
                "source_topic": message.topic,
                "source_subscription": subscription.name,
                "source_message_id": message.message_id,
                "error": f"{type(exc).__name__}: {exc}"[:500],
            }
            self.publish(dead_letter_topic(message.topic), message.data, attributes)
            return
        delay = retry.backoff_seconds(message.delivery_attempt)
        with self._cond:
            self._enqueue(
                time.monotonic() + delay, subscription, replace(message, delivery_attempt=message.delivery_attempt + 1)
            )
            self._cond.notify()

    def drain(self, max_deliveries: int = 100_000) -> int:
        """Deliver everything pending now, retries included, ignoring backoff delays (tests)."""
        delivered = 0
        while delivered < max_deliveries:
            with self._cond:
                if not self._pending:
                    return delivered
                _, _, subscription, message = heapq.heappop(self._pending)
            self._deliver(subscription, message)
            delivered += 1
        raise RuntimeError("bus did not settle: a handler keeps publishing")

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def start(self) -> None:
        if not self._workers:
            self._stopping = False
            self._workers = [
                threading.Thread(target=self._run, name=f"segops-bus-{i}", daemon=True) for i in range(self.concurrency)
            ]
            for worker in self._workers:
                worker.start()

    def stop(self, drain_timeout: float = 10.0) -> list[tuple[str, BusMessage]]:
        """Stop after delivering what is due, and return what is left undelivered (a delivery waiting
        out its retry backoff, say) as (subscription, message) for the caller to keep. Never started
        (tests that `drain` by hand): nothing would deliver, so there is nothing to wait for."""
        deadline = time.monotonic() + drain_timeout
        while self._workers and self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout=drain_timeout)
        started, self._workers = bool(self._workers), []
        if not started:
            return []
        with self._cond:
            left = [(subscription.name, message) for _, _, subscription, message in sorted(self._pending)]
            self._pending.clear()
        return left

    def _next_due(self) -> tuple[Subscription, BusMessage] | None:
        """The earliest due delivery whose subscription is below its concurrency (lock held)."""
        now = time.monotonic()
        skipped = []
        found = None
        while self._pending and self._pending[0][0] <= now:
            entry = heapq.heappop(self._pending)
            if self._active.get(entry[2].name, 0) < entry[2].concurrency:
                found = (entry[2], entry[3])
                break
            skipped.append(entry)
        for entry in skipped:
            heapq.heappush(self._pending, entry)
        return found

    def _run(self) -> None:
        while True:
            with self._cond:
                due = None
                while not self._stopping and (due := self._next_due()) is None:
                    # Nothing pending, or the earliest due delivery waits for its subscription's
                    # in-flight ones, whose completion notifies: sleep until notified.
                    timeout = self._pending[0][0] - time.monotonic() if self._pending else 0
                    self._cond.wait(timeout if timeout > 0 else None)
                if due is None:
                    return
                subscription, message = due
                if self._pending:
                    self._cond.notify()
                self._in_flight += 1
                self._active[subscription.name] = self._active.get(subscription.name, 0) + 1
            try:
                self._deliver(subscription, message)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._active[subscription.name] -= 1
                    self._cond.notify()

    def check(self) -> None:
        """The in-process bus is reachable whenever the process is up."""

    def worker_status(self) -> str:
        if not self._workers or not all(worker.is_alive() for worker in self._workers):
            return "ok" if not self._workers and not self._pending else "bus worker is not running"
        with self._cond:
            if self._pending and time.monotonic() - self._pending[0][0] > 60:
                return "bus worker is more than 60 s behind"
        return "ok"
