"""Structured JSON log lines (Cloud Logging reads `severity` and `message`)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class QueryStringRedactor(logging.Filter):
    """urllib3 logs the URL of a request it retries; a ClickHouse URL's query string carries the
    statement's bound values (`param_user_id=...`: user ids, emails), which no log line may hold."""

    _QUERY = re.compile(r"\?[^\s'\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = self._QUERY.sub("?<query redacted>", message), None
        return True


def configure(level: str = "INFO") -> None:
    connections = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, QueryStringRedactor) for f in connections.filters):
        connections.addFilter(QueryStringRedactor())
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
