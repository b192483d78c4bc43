"""The shared HTTP sync engine: one call with retries, and batched pushes with per-batch accounting.

Retry rules (the same for every platform): `429` waits for `Retry-After` (seconds or HTTP date) or a
reset header (`X-RateLimit-Reset` epoch seconds, `RateLimit-Reset` delta seconds), else backs off;
`5xx`, timeouts and connection errors back off exponentially with jitter; any other `4xx` is final.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests

from segops import clock
from segops.connectors.egress import EgressPolicy, EgressRefused

log = logging.getLogger("segops.connectors")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    timeout_seconds: float = 10.0
    max_wait_seconds: float = 120.0


class PlatformError(Exception):
    """A call that failed for good. `summary` is safe to store: method, path, status and the standard
    reason phrase, never the platform's body (it may echo secrets or be whatever a hostile target says)."""

    def __init__(self, summary: str, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(summary)
        self.summary = summary
        self.status = status
        self.retryable = retryable


class HttpSync:
    """One platform's HTTP client: JSON bodies, retries per `RetryPolicy`, only to targets `egress`
    allows, no redirects, response bodies never in errors."""

    def __init__(
        self,
        policy: RetryPolicy,
        egress: EgressPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.session = egress.session()
        self.sleep = sleep

    def call(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Any = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> requests.Response:
        data = orjson.dumps(body) if body is not None else None
        last = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            wait: float
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=dict(headers),
                    data=data,
                    timeout=self.policy.timeout_seconds,
                    allow_redirects=False,
                )
            except EgressRefused as exc:
                raise PlatformError(f"{method} {_path(url)}: target refused: {exc}") from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = f"{method} {_path(url)}: {type(exc).__name__}"
                wait = self._backoff(attempt)
            else:
                if response.status_code in ok:
                    return response
                last = f"{method} {_path(url)} → {response.status_code} {_phrase(response.status_code)}"
                if response.status_code == 429:
                    wait = self._rate_limit_wait(response) or self._backoff(attempt)
                elif response.status_code >= 500:
                    wait = self._backoff(attempt)
                else:
                    raise PlatformError(last, response.status_code)
            if attempt == self.policy.max_attempts:
                break
            log.warning("platform call retried", extra={"attempt": attempt, "reason": last, "wait_s": round(wait, 3)})
            self.sleep(wait)
        raise PlatformError(f"{last} (gave up after {self.policy.max_attempts} attempts)", retryable=True)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_max_seconds, self.policy.backoff_base_seconds * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        headers = response.headers
        wait: float | None = None
        retry_after = headers.get("Retry-After")
        if retry_after:
            wait = _seconds_from_retry_after(retry_after)
        if wait is None and headers.get("X-RateLimit-Reset"):
            try:
                wait = float(headers["X-RateLimit-Reset"]) - clock.now().timestamp()
            except ValueError:
                wait = None
        if wait is None and headers.get("RateLimit-Reset"):
            try:
                wait = float(headers["RateLimit-Reset"])
            except ValueError:
                wait = None
        return None if wait is None else min(max(wait, 0.0), self.policy.max_wait_seconds)


def _seconds_from_retry_after(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return float(when.timestamp() - clock.now().timestamp())


def _path(url: str) -> str:
    return urlsplit(url).path[:120]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(non-standard status)"


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Tally:
    """What one sync did; failures keep the ids so they can be dead-lettered."""

    added: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + count

    def fail(self, action: str, user_ids: list[str], error: PlatformError) -> None:
        self.failed += len(user_ids)
        if error.summary not in self.errors and len(self.errors) < 20:
            self.errors.append(error.summary)
        self.dead_letters.append({"action": action, "user_ids": user_ids, "error": error.summary})
