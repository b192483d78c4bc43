"""Which failures mean a backend is unreachable: the caller gets a 503 `service_unavailable` with
`Retry-After` (retry later, nothing is wrong with the request), not a 500 (docs/operations.md § Outages).

Types are matched by name along the exception, its class hierarchy and its causes, so no backend
library is imported here (a function loads only the clients it uses)."""

from __future__ import annotations

import re
from collections.abc import Callable

from segops.errors import DependencyDown, TooExpensive

# Transport failures and "try again" answers of the warehouse (clickhouse-connect), the control-plane
# and object stores (google-cloud-storage over requests) and the bus (google-cloud-pubsub).
_OUTAGE_TYPES = frozenset(
    {
        "clickhouse_connect.driver.exceptions.OperationalError",
        "requests.exceptions.ConnectionError",
        "requests.exceptions.Timeout",
        "google.auth.exceptions.TransportError",
        "google.api_core.exceptions.RetryError",
        "google.api_core.exceptions.ServiceUnavailable",
        "google.api_core.exceptions.GatewayTimeout",
        "google.api_core.exceptions.DeadlineExceeded",
        "google.api_core.exceptions.TooManyRequests",
        "google.api_core.exceptions.InternalServerError",
        # Sockets: refused, reset, timed out (also what a Pub/Sub publish future raises on timeout).
        "builtins.ConnectionError",
        "builtins.TimeoutError",
    }
)


def _is_outage(error: BaseException) -> bool:
    return any(f"{cls.__module__}.{cls.__qualname__}" in _OUTAGE_TYPES for cls in type(error).__mro__)


def _in_chain(error: BaseException, test: Callable[[BaseException], bool]) -> bool:
    """Whether `error` or an exception that caused it (explicitly or while handling it) passes `test`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if test(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def as_outage(error: BaseException) -> DependencyDown | None:
    """The 503 for `error` when it (or an exception that caused it) is a backend outage, else None."""
    return DependencyDown("a backend is unavailable, retry later") if _in_chain(error, _is_outage) else None


# ClickHouse's names for a statement stopped at its bounds (`max_execution_time`, `max_memory_usage`,
# the estimated-time check), as chDB and the server's HTTP errors both spell them.
_OVER_BOUNDS = re.compile(r"\((TIMEOUT_EXCEEDED|TOO_SLOW|MEMORY_LIMIT_EXCEEDED)\)")


def as_too_expensive(error: BaseException) -> TooExpensive | None:
    """The 422 for `error` when it (or an exception that caused it) is a statement stopped at its
    time or memory bound: the request is valid, and as asked it costs more than a request may."""
    if not _in_chain(error, lambda current: _OVER_BOUNDS.search(str(current)) is not None):
        return None
    return TooExpensive(
        "this request needs more time or memory than a request may use: narrow it (a shorter "
        "window, fewer conditions), or compute the segment instead of previewing it"
    )
