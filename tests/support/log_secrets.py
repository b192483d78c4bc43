"""Secret scan of the log output the test suite produces (a pytest plugin, registered by tests/conftest.py).

Every log record of every test is rendered exactly as production renders it (`segops.logs.JsonFormatter`:
message, extras, exception text) at production's level (INFO) and searched for
- any SegOps API key (`sk_live_...`) or JWT, by shape, so freshly generated ones are caught too;
- every literal secret a test registered with `watch()` (passwords, connector and Shopify secrets).
A test whose logs hold one fails in its teardown, naming the logger and the kind of secret (never the
secret itself: the report is log output too).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from segops.logs import JsonFormatter

_SHAPES = {
    "API key": re.compile(r"sk_live_[A-Za-z0-9_-]{20,}"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
}
_watched: set[str] = set()
_lock = threading.Lock()


def watch(*secrets: str) -> None:
    """Register literal secrets a test uses; any log line containing one fails that test."""
    with _lock:
        _watched.update(s for s in secrets if len(s) >= 6)


@dataclass(frozen=True)
class Leak:
    logger: str
    kind: str


class SecretScan(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.formatter_ = JsonFormatter()
        self.leaks: list[Leak] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.formatter_.format(record)
        except Exception:  # a record that cannot be rendered cannot leak through the JSON logs either
            return
        with _lock:
            literals = [s for s in _watched if s in line]
        kinds = [kind for kind, shape in _SHAPES.items() if shape.search(line)]
        kinds += ["registered secret"] * bool(literals)
        for kind in kinds:
            self.leaks.append(Leak(record.name, kind))


_scan = SecretScan()


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(_scan)
    # Scan what production emits: INFO and above (Python's default root level would drop INFO).
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().removeHandler(_scan)


@pytest.fixture(autouse=True)
def _no_secrets_in_logs() -> Iterator[None]:
    start = len(_scan.leaks)
    yield
    leaks = _scan.leaks[start:]
    if leaks:
        found = sorted({f"{leak.kind} in a {leak.logger!r} log record" for leak in leaks})
        pytest.fail("secret in log output: " + "; ".join(found), pytrace=False)
