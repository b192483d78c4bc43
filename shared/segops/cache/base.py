from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from segops.errors import DependencyDown


class CacheUnavailable(DependencyDown):
    """The cache server cannot be reached. Callers with a source of truth (API keys, sessions, membership,
    event-id claims) fall back to it; anything else becomes a 503 with `Retry-After`."""

    def __init__(self) -> None:
        super().__init__("the cache is unavailable, retry later", {"dependency": "cache"})


class Cache(Protocol):
    """Every method may raise `CacheUnavailable` (never another transport error)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        """`set` for each item in one round trip."""
        ...

    def swap(self, key: str, expected: bytes | None, value: bytes, ttl_seconds: float) -> bool:
        """Set `key` only if it still holds `expected` (None: absent); True when this call set it (atomic)."""
        ...

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Set only if absent; True when this call set it (atomic)."""
        ...

    def add_many(self, keys: Sequence[str], value: bytes, ttl_seconds: float) -> list[bool]:
        """`add` for each key in one round trip, applied as one step: no other caller's `add` interleaves
        (each key is still set only if absent: not all or none)."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """`get` for each key in one round trip."""
        ...

    def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one to a counter and return it (atomic); a new counter lives `ttl_seconds` from its first hit."""
        ...

    def delete(self, *keys: str) -> None: ...

    def check(self) -> None: ...
