"""Bound values travel in a ClickHouse request's query string; urllib3's retry warnings must not log them."""

from __future__ import annotations

import logging

import pytest
from segops import logs


def test_urllib3_retry_lines_lose_their_query_string(caplog: pytest.LogCaptureFixture) -> None:
    logs.configure()
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").warning(
            "Retrying (%r) after connection broken by '%r': %s",
            "Retry(total=2)",
            "ReadTimeoutError()",
            "/?query_id=q1&param_user_id=alice%40example.com&database=segops",
        )
    [record] = caplog.records
    assert "alice" not in record.getMessage() and "param_" not in record.getMessage()
    assert record.getMessage().endswith(": /?<query redacted>")
