"""The in-process cache stays bounded without scanning itself on every write at its bound."""

from __future__ import annotations

import time

import pytest
from segops.cache.memory import MemoryCache


def _count_scans(cache: MemoryCache, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list counting the cache's eviction scans from now on."""
    scans = [0]
    evict = cache._evict

    def counted(now: float) -> None:
        scans[0] += 1
        evict(now)

    monkeypatch.setattr(cache, "_evict", counted)
    return scans


def test_writes_past_the_bound_scan_once_per_tenth_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = MemoryCache(max_entries=1_000)
    scans = _count_scans(cache, monkeypatch)
    # WHEN ten times the bound is written (as a million-user invalidation writes tombstones)
    cache.set_many({f"k{n}": b"v" for n in range(10_000)}, 300)
    # THEN the cache held its bound, kept the newest entries, and scanned once per 100 writes past it
    assert len(cache._data) <= 1_000
    assert cache.get("k9999") == b"v" and cache.get("k0") is None
    assert scans[0] <= 9_000 // 100 + 1


def test_claims_are_never_evicted_before_they_expire_and_the_bound_returns_after_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = MemoryCache(max_entries=1_000)
    scans = _count_scans(cache, monkeypatch)
    cache.set("held", b"other", 60)
    cache.set_many({f"old{n}": b"v" for n in range(900)}, 60)
    # WHEN a flush claims five times the bound at once (as the event writer claims its ids)
    assert cache.add_many(["held", *(f"c{n}" for n in range(5_000))], b"mine", 60) == [False] + [True] * 5_000
    # AND other entries keep being written
    cache.set_many({f"new{n}": b"v" for n in range(2_000)}, 60)
    # THEN every claim is still held (a dropped claim would let a second flush write its event),
    # while older entries made room, with one scan per 100 writes at most
    assert [cache.get(f"c{n}") for n in range(5_000)] == [b"mine"] * 5_000
    assert cache.get("old0") is None and cache.get("new1999") == b"v"
    assert scans[0] <= (5_000 + 2_000) // 100 + 2
    # WHEN the flush releases its claims
    cache.delete(*(f"c{n}" for n in range(5_000)))
    cache.set_many({f"later{n}": b"v" for n in range(3_000)}, 60)
    # THEN the cache is back within its bound
    assert len(cache._data) <= 1_000


def test_a_claim_of_only_new_keys_at_the_bound_evicts_other_entries_never_a_claim() -> None:
    # GIVEN a cache near its bound, with claims and other entries
    cache = MemoryCache(max_entries=1_000)
    cache.add_many([f"a{n}" for n in range(300)], b"first", 60)
    cache.set_many({f"old{n}": b"v" for n in range(600)}, 60)
    # WHEN a flush claims only keys nobody holds, five times the bound (set all at once)
    assert cache.add_many([f"c{n}" for n in range(5_000)], b"mine", 60) == [True] * 5_000
    # THEN older entries made room, and every claim, earlier or new, is still held
    assert cache.get("old0") is None
    assert [cache.get(f"a{n}") for n in range(300)] == [b"first"] * 300
    assert [cache.get(f"c{n}") for n in range(5_000)] == [b"mine"] * 5_000


def test_expired_claims_make_room() -> None:
    cache = MemoryCache(max_entries=100)
    cache.add_many([f"c{n}" for n in range(100)], b"mine", 0.01)
    time.sleep(0.02)
    cache.set_many({f"k{n}": b"v" for n in range(100)}, 60)
    assert len(cache._data) <= 100 and cache.get("k99") == b"v"
    assert not cache._claims  # nor are their marks kept
