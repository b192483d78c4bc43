from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

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
