"""Which failures are backend outages (503 + Retry-After) and which stay bugs (500)."""

from __future__ import annotations

import clickhouse_connect.driver.exceptions as ch
import pytest
import requests
from google.api_core import exceptions as gexc
from segops.errors import DependencyDown
from segops.http.outages import as_outage, as_too_expensive


@pytest.mark.parametrize(
    "error",
    [
        ch.OperationalError("Error HTTPConnectionPool: Max retries exceeded"),
        requests.exceptions.ConnectionError("refused"),
        requests.exceptions.ReadTimeout("read timed out"),
        gexc.ServiceUnavailable("backend unavailable"),
        gexc.TooManyRequests("rate"),
        gexc.RetryError("deadline", cause=None),
        ConnectionRefusedError(111, "refused"),
        TimeoutError("publish timed out"),
    ],
)
def test_transport_failures_are_outages(error: Exception) -> None:
    outage = as_outage(error)
    assert isinstance(outage, DependencyDown)
    assert (outage.status, outage.code) == (503, "service_unavailable")


def test_an_outage_raised_under_another_exception_is_found_through_its_cause() -> None:
    outer = RuntimeError("while loading a document")
    outer.__cause__ = requests.exceptions.ConnectionError("refused")
    assert as_outage(outer) is not None


@pytest.mark.parametrize(
    "error", [ValueError("bad"), KeyError("k"), ch.DatabaseError("Code: 62. Syntax error"), gexc.NotFound("gone")]
)
def test_bugs_and_answers_are_not_outages(error: Exception) -> None:
    assert as_outage(error) is None


def test_a_statement_stopped_at_its_bounds_is_too_expensive_not_an_outage() -> None:
    # GIVEN the errors ClickHouse raises for a statement past max_execution_time and max_memory_usage
    # (as chDB words them; tests/integration/test_outages.py raises them for real)
    for text in (
        "Code: 159. DB::Exception: Timeout exceeded: elapsed 1002.426 ms, maximum: 1000.000 ms. (TIMEOUT_EXCEEDED)",
        "Code: 241. DB::Exception: Query memory limit exceeded: would use 12.10 MiB. (MEMORY_LIMIT_EXCEEDED)",
    ):
        # WHEN wrapped as the warehouse re-raises it THEN it is a 422 too_expensive, and not an outage
        wrapped = ValueError("query failed")
        wrapped.__cause__ = RuntimeError(text)
        over = as_too_expensive(wrapped)
        assert over is not None and (over.status, over.code) == (422, "too_expensive")
        assert as_outage(wrapped) is None
    assert as_too_expensive(RuntimeError("Code: 62. Syntax error (SYNTAX_ERROR)")) is None
