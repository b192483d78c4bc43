"""Fixtures shared by the cache contracts (`test_cache.py`, `test_cache_limits.py`): every contract
runs on the in-process cache and on a real Valkey."""

from __future__ import annotations

import uuid

import pytest
from segops.cache.base import Cache
from segops.cache.memory import MemoryCache
from segops.cache.redis_backend import RedisCache


@pytest.fixture(params=["memory", "valkey"])
def cache(request: pytest.FixtureRequest) -> Cache:
    if request.param == "memory":
        return MemoryCache()
    return RedisCache(request.getfixturevalue("valkey_url"))


@pytest.fixture
def key() -> str:
    """Keys are unique per test: the Valkey server is shared by the whole session."""
    return f"test:{uuid.uuid4().hex}"
