"""`make dev`'s port: SEGOPS_PORT, else PORT (the Cloud Run / functions-framework convention), else 8080."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from segops.config import Settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (8080, "default")),
        ({"PORT": "18123"}, (18123, "PORT")),
        ({"SEGOPS_PORT": "18124"}, (18124, "SEGOPS_PORT")),
        ({"PORT": "18123", "SEGOPS_PORT": "18124"}, (18124, "SEGOPS_PORT")),
        ({"PORT": "18123", "SEGOPS_PORT": "8080"}, (8080, "SEGOPS_PORT")),  # even when it equals the default
    ],
)
def test_listen_port(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[int, str]) -> None:
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("SEGOPS_PORT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().listen_port() == expected


@pytest.mark.parametrize("value", ["http", "-1", "65536"])
def test_a_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.delenv("SEGOPS_PORT", raising=False)
    monkeypatch.setenv("PORT", value)
    with pytest.raises(ValidationError):
        Settings()
