from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from segops_sdk.retry import (
    RETRY_AFTER_MAX,
    RETRY_MAX_DELAY,
    backoff_delay,
    is_retryable,
    is_retryable_status,
    parse_retry_after,
    retry_delay,
)


def test_only_408_429_and_5xx_are_retryable() -> None:
    statuses = [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504]
    assert [s for s in statuses if is_retryable_status(s)] == [408, 429, 500, 502, 503, 504]


def test_backoff_doubles_jitters_within_the_upper_half_and_is_capped() -> None:
    assert [backoff_delay(n, lambda: 0.0) for n in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert [backoff_delay(n, lambda: 1.0) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(40, lambda: 1.0) == RETRY_MAX_DELAY
    assert backoff_delay(40, lambda: 0.0) == RETRY_MAX_DELAY / 2


def test_retry_after_accepts_seconds_and_http_dates_capped_and_ignores_junk() -> None:
    now = datetime(2026, 4, 25, 14, 32, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2026, 4, 25, 14, 32, 30, tzinfo=UTC), usegmt=True)
    earlier = format_datetime(datetime(2026, 4, 25, 14, 31, tzinfo=UTC), usegmt=True)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after(later, now) == 30.0
    assert parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now) > RETRY_AFTER_MAX
    assert parse_retry_after(earlier, now) == 0.0
    assert parse_retry_after("86400", now) == 86400.0  # not capped here: see retry_delay and is_retryable
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None


def test_the_servers_retry_after_wins_over_the_backoff_up_to_the_cap() -> None:
    assert retry_delay(3, 1.0, lambda: 1.0) == 1.0
    assert retry_delay(3, None, lambda: 1.0) == 4.0
    assert retry_delay(0, 86400.0, lambda: 1.0) == RETRY_AFTER_MAX


def test_a_used_up_quota_and_a_429_or_503_asking_for_more_than_the_cap_are_not_retried() -> None:
    assert not is_retryable(429, "quota_exceeded", None)
    assert not is_retryable(429, "quota_exceeded", 1.0)
    assert is_retryable(429, "rate_limited", 1.0)
    assert is_retryable(429, "rate_limited", RETRY_AFTER_MAX)
    assert not is_retryable(429, "rate_limited", RETRY_AFTER_MAX + 1)
    assert not is_retryable(503, "service_unavailable", 86400.0)
    assert is_retryable(503, "service_unavailable", None)
    assert is_retryable(500, None, 86400.0)  # Retry-After is only meaningful on 429/503: waited, capped
    assert not is_retryable(400, "quota_exceeded", None)
