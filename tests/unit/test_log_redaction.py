"""Bound values travel in a ClickHouse request's query string; urllib3's retry warnings must not log them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from segops import logs
from segops import runtime as runtime_module
from segops.config import Settings


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


def test_a_deployed_functions_cold_start_makes_its_log_lines_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a function process whose root logger nothing has configured (functions-framework does not)
    root = logging.getLogger()
    before = list(root.handlers)
    monkeypatch.setattr(root, "handlers", [h for h in before if not isinstance(h.formatter, logs.JsonFormatter)])
    settings = Settings(environment="production", data_dir=tmp_path, uses=["store"], log_level="INFO")
    build = runtime_module.build_runtime
    monkeypatch.setattr(runtime_module, "build_runtime", lambda: build(settings))
    runtime_module.set_runtime(None)
    try:
        # WHEN its runtime is built on the first request
        runtime_module.get_runtime()
        # THEN its log lines are JSON at the configured level
        assert any(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
        assert root.level == logging.INFO
    finally:
        runtime_module.set_runtime(None)
