from __future__ import annotations

import pytest
from segops.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A short debounce window: long enough to show coalescing, short enough for a test."""
    return settings.model_copy(update={"compute_debounce_seconds": 0.2})
