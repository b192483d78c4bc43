"""A real store with its requests counted at the `Store` boundary (what reaches GCS in production)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from segops.store.base import Document, Store


class CountingStore:
    """Delegates every call to `inner` and counts it by operation (`get`, `put`, `list`, `delete`)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def get(self, key: str) -> Document | None:
        self.calls["get"] += 1
        return self.inner.get(key)

    def put(self, key: str, body: dict[str, Any], if_generation: int | None = None) -> int:
        self.calls["put"] += 1
        return self.inner.put(key, body, if_generation)

    def list(self, prefix: str) -> list[str]:
        self.calls["list"] += 1
        return self.inner.list(prefix)

    def delete(self, key: str, if_generation: int | None = None) -> None:
        self.calls["delete"] += 1
        self.inner.delete(key, if_generation)

    def check(self) -> None:
        self.inner.check()

    def total(self) -> int:
        return sum(self.calls.values())
