"""Artifacts some tests need that `make test` builds first (the console, the TypeScript SDK, Chromium):
a test run without them fails at once with one line naming the make target that builds each, instead
of a traceback per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_built(artifact: Path, make_target: str) -> None:
    """Fail the test (setup) unless `artifact` exists: `make <make_target>` builds it."""
    if not artifact.exists():
        shown = artifact.relative_to(REPO) if artifact.is_relative_to(REPO) else artifact
        pytest.fail(f"{shown} is missing: run `make {make_target}` (make test does it)", pytrace=False)
