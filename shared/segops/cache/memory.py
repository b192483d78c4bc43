from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence


class MemoryCache:
    """In-process TTL cache (one process in `make dev`)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.RLock()
        self._max_entries = max_entries

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._data[key]
                return None
            return entry[1]

    def _evict(self, now: float) -> None:
        for key in [k for k, (expiry, _) in self._data.items() if expiry <= now]:
            del self._data[key]
        while len(self._data) >= self._max_entries:
            del self._data[next(iter(self._data))]

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._data) >= self._max_entries:
                self._evict(now)
            self._data[key] = (now + ttl_seconds, value)

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        with self._lock:
            for key, value in items.items():
                self.set(key, value, ttl_seconds)

    def swap(self, key: str, expected: bytes | None, value: bytes, ttl_seconds: float) -> bool:
        with self._lock:
            if self.get(key) != expected:
                return False
            self.set(key, value, ttl_seconds)
            return True

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry[0] > now:
                return False
            if len(self._data) >= self._max_entries:
                self._evict(now)
            self._data[key] = (now + ttl_seconds, value)
            return True

    def add_many(self, keys: Sequence[str], value: bytes, ttl_seconds: float) -> list[bool]:
        with self._lock:
            return [self.add(key, value, ttl_seconds) for key in keys]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    def incr(self, key: str, ttl_seconds: float) -> int:
        now = time.monotonic()
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry[0] <= now:
                if len(self._data) >= self._max_entries:
                    self._evict(now)
                entry = (now + ttl_seconds, b"0")
            count = int(entry[1]) + 1
            self._data[key] = (entry[0], str(count).encode())
            return count

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def check(self) -> None:
        """Always reachable."""
