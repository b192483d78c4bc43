from __future__ import annotations

import pytest
from segops.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A short debounce window: long enough to show coalescing on a loaded CI machine (notices
    published within half of it are covered by one compute), short enough for a test."""
    return settings.model_copy(update={"compute_debounce_seconds": 1.0})
