"""Key/value cache with TTL: in-process for `make dev`, Valkey/Redis in production."""

from segops.cache.base import Cache

__all__ = ["Cache"]
