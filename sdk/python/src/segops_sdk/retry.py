"""Retry policy: which failures are transient and how long to wait before the next attempt."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
# Longest Retry-After waited for, so that shutdown cannot hang for hours on one header. A 429 or 503
# asking for longer is not retried at all (see `is_retryable`).
RETRY_AFTER_MAX = 60.0


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are transient; every other 4xx means the request itself is wrong."""
    return status in (408, 429) or status >= 500


def is_retryable(status: int, code: str | None, retry_after: float | None) -> bool:
    """`is_retryable_status`, except where no retry within the SDK's bounds can succeed: a 429
    `quota_exceeded` (the tenant's monthly events are used up until the month ends), or a 429/503 whose
    `Retry-After` (seconds) is longer than `RETRY_AFTER_MAX`. Those are reported at once instead of
    holding `flush`/`shutdown` (and the process's exit) through every retry."""
    if not is_retryable_status(status):
        return False
    if status == 429 and code == "quota_exceeded":
        return False
    return not (status in (429, 503) and retry_after is not None and retry_after > RETRY_AFTER_MAX)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as delay-seconds or an HTTP-date, in seconds from `now` (epoch); None if absent/invalid.
    Not capped: `retry_delay` caps the wait at `RETRY_AFTER_MAX`."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    if not text[:1].isalpha():
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - now, 0.0)


def backoff_delay(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """Equal jitter: attempt n waits between half and all of min(cap, base * 2^n)."""
    step: float = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2.0**attempt)
    return step / 2 + draw() * step / 2


def retry_delay(attempt: int, retry_after: float | None, draw: Callable[[], float] = random.random) -> float:
    """The server's Retry-After (at most `RETRY_AFTER_MAX`) wins over our own backoff when it sent one."""
    return min(retry_after, RETRY_AFTER_MAX) if retry_after is not None else backoff_delay(attempt, draw)


def wait(seconds: float) -> None:
    time.sleep(seconds)
