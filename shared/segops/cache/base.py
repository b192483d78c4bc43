from __future__ import annotations

from typing import Protocol


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Set only if absent; True when this call set it (atomic)."""
        ...

    def delete(self, *keys: str) -> None: ...

    def check(self) -> None: ...
