"""The in-process cache stays bounded without scanning itself on every write at its bound."""

from __future__ import annotations

import pytest
from segops.cache.memory import MemoryCache


def test_writes_past_the_bound_scan_once_per_tenth_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = MemoryCache(max_entries=1_000)
    scans = 0
    evict = cache._evict

    def counted(now: float) -> None:
        nonlocal scans
        scans += 1
        evict(now)

    monkeypatch.setattr(cache, "_evict", counted)
    # WHEN ten times the bound is written (as a million-user invalidation writes tombstones)
    cache.set_many({f"k{n}": b"v" for n in range(10_000)}, 300)
    # THEN the cache held its bound, kept the newest entries, and scanned once per 100 writes past it
    assert len(cache._data) <= 1_000
    assert cache.get("k9999") == b"v" and cache.get("k0") is None
    assert scans <= 9_000 // 100 + 1


def test_claims_past_the_bound_keep_it_and_the_newest_claims() -> None:
    cache = MemoryCache(max_entries=1_000)
    cache.set("held", b"other", 60)
    # WHEN a flush claims five times the bound at once (one batch, as the event writer claims its ids)
    assert cache.add_many(["held", *(f"c{n}" for n in range(5_000))], b"mine", 60) == [False] + [True] * 5_000
    # THEN the cache held its bound and kept the newest claims
    assert len(cache._data) <= 1_000
    assert cache.get_many(["c4999", "c0"]) == [b"mine", None]
