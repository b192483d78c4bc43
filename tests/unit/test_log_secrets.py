"""The log secret scan itself: it must catch what it promises, or the suite-wide check proves nothing."""

from __future__ import annotations

import logging

from segops.auth import api_keys

from tests.support.log_secrets import SecretScan, watch


def _scan(*records: tuple[str, dict[str, object]]) -> list[str]:
    scan = SecretScan()
    logger = logging.getLogger("segops.scan-probe")
    logger.addHandler(scan)
    logger.propagate = False
    try:
        for message, extra in records:
            logger.warning(message, extra=extra)
    finally:
        logger.removeHandler(scan)
        logger.propagate = True
    return [leak.kind for leak in scan.leaks]


def test_api_keys_jwts_and_registered_secrets_are_caught_in_messages_and_extras() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    watch("hunter2-registered-secret")
    assert _scan(
        ("request from %s", {"key": api_keys.generate()}),
        (f"token {jwt}", {}),
        ("connecting", {"dsn": "redis://:hunter2-registered-secret@10.0.0.3"}),
    ) == ["API key", "JWT", "registered secret"]


def test_ordinary_log_lines_pass() -> None:
    assert _scan(("api key created", {"prefix": "sk_live_abc", "tenant_id": 3}), ("GET /api/segments/", {})) == []
