"""Why events were lost or not counted: every loss is reported once through `on_error`."""

from __future__ import annotations

from typing import Any, Literal

ErrorKind = Literal["rejected", "skipped", "retries_exhausted", "queue_overflow"]


class SegOpsError(Exception):
    """A loss report.

    `kind` is `rejected` (non-retryable status such as 400/401/413; also a 429 `quota_exceeded`, and a
    429/503 whose `Retry-After` is longer than the SDK ever waits), `skipped` (the API accepted the
    batch but skipped `event_count` invalid events), `retries_exhausted` (429/5xx/network errors
    persisted through `max_retries` retries) or `queue_overflow` (the buffer was full and the oldest
    events were dropped).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        event_count: int,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.event_count = event_count
        self.status = status
        self.code = code
        self.details = details


class SegOpsClosedError(RuntimeError):
    """Raised by `track`, `identify` and `flush` after `shutdown()`."""

    def __init__(self, method: str) -> None:
        super().__init__(f"SegOpsClient.{method}() called after shutdown()")
