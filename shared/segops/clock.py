"""The service's one source of "now": production code asks `clock.now()`, tests freeze it.

Monotonic timers (deadlines, durations, cache expiry) stay on `time.monotonic`/`perf_counter`:
they measure elapsed time, not the instant, and freezing them would stall waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

# A module global rather than a context variable: a frozen instant must also hold in the bus
# worker and server threads a test drives, which do not inherit the test's context.
_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware UTC (the frozen one inside `frozen`)."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken to be UTC already (as the warehouse's columns read it)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_millis() -> datetime:
    """`now()` cut to whole milliseconds, the precision of the warehouse's `DateTime64(3)` columns,
    so an instant written there reads back equal."""
    instant = now()
    return instant.replace(microsecond=instant.microsecond // 1000 * 1000)


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Every `now()` in the process returns `at` (in UTC) until the block ends; blocks nest."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError("freeze the clock at an aware datetime")
    previous, _frozen = _frozen, at.astimezone(UTC)
    try:
        yield _frozen
    finally:
        _frozen = previous
