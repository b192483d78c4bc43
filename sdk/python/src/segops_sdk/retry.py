"""Retry policy: which failures are transient and how long to wait before the next attempt."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
# Longest Retry-After honoured, so that shutdown cannot hang for hours on one header.
RETRY_AFTER_MAX = 60.0


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are transient; every other 4xx means the request itself is wrong."""
    return status in (408, 429) or status >= 500


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as delay-seconds or an HTTP-date, in seconds from `now` (epoch); None if absent/invalid."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), RETRY_AFTER_MAX)
    if not text[:1].isalpha():
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(moment.timestamp() - now, 0.0), RETRY_AFTER_MAX)


def backoff_delay(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """Equal jitter: attempt n waits between half and all of min(cap, base * 2^n)."""
    step: float = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2.0**attempt)
    return step / 2 + draw() * step / 2


def retry_delay(attempt: int, retry_after: float | None, draw: Callable[[], float] = random.random) -> float:
    """The server's Retry-After wins over our own backoff when it sent one."""
    return retry_after if retry_after is not None else backoff_delay(attempt, draw)


def wait(seconds: float) -> None:
    time.sleep(seconds)
