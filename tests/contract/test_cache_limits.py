"""The cache's two limit primitives, one contract for the in-process cache and a real Valkey server:
token buckets taken all-or-none in one atomic call, and a counter bounded by a ceiling."""

from __future__ import annotations

import threading
import time

from segops.cache.base import Cache, TokenBucket

T0 = 1_800_000_000_000  # a fixed "now" in ms: refill is driven by the time the caller passes


def test_a_new_bucket_is_full_and_empties_one_token_a_take(cache: Cache, key: str) -> None:
    bucket = TokenBucket(key, capacity=3, per_second=1)
    assert [cache.take_tokens([bucket], 1, T0) for _ in range(3)] == [(True, [2.0]), (True, [1.0]), (True, [0.0])]
    # THEN the fourth is refused and takes nothing
    assert cache.take_tokens([bucket], 1, T0) == (False, [0.0])


def test_buckets_refill_with_time_up_to_their_capacity(cache: Cache, key: str) -> None:
    bucket = TokenBucket(key, capacity=4, per_second=2)
    for _ in range(4):
        assert cache.take_tokens([bucket], 1, T0)[0]
    # 250 ms at 2 tokens/s is half a token: still refused
    assert cache.take_tokens([bucket], 1, T0 + 250) == (False, [0.5])
    # 500 ms is one token
    assert cache.take_tokens([bucket], 1, T0 + 500) == (True, [0.0])
    # an hour later the bucket holds its capacity, not more
    assert cache.take_tokens([bucket], 1, T0 + 3_600_000) == (True, [3.0])


def test_a_caller_whose_clock_is_behind_refills_nothing(cache: Cache, key: str) -> None:
    bucket = TokenBucket(key, capacity=2, per_second=1)
    assert cache.take_tokens([bucket], 2, T0 + 10_000)[0]
    # a second instance whose clock is 10 s behind neither refills nor moves the stamp back
    assert cache.take_tokens([bucket], 1, T0) == (False, [0.0])
    assert cache.take_tokens([bucket], 1, T0 + 11_000) == (True, [0.0])


def test_several_buckets_are_taken_all_or_none(cache: Cache, key: str) -> None:
    wide, narrow = TokenBucket(key + ":tenant", 10, 1), TokenBucket(key + ":key", 2, 1)
    assert cache.take_tokens([wide, narrow], 1, T0) == (True, [9.0, 1.0])
    assert cache.take_tokens([wide, narrow], 1, T0) == (True, [8.0, 0.0])
    # the narrow bucket refuses: the wide one keeps its tokens
    assert cache.take_tokens([wide, narrow], 1, T0) == (False, [8.0, 0.0])
    assert cache.take_tokens([wide], 1, T0) == (True, [7.0])


def test_concurrent_takers_never_get_more_than_the_bucket_holds(cache: Cache, key: str) -> None:
    # GIVEN 8 threads racing for 50 tokens with 200 takes, at one instant (no refill)
    bucket = TokenBucket(key, capacity=50, per_second=1)
    granted: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            taken, _ = cache.take_tokens([bucket], 1, T0)
            with lock:
                granted.append(taken)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly the capacity was admitted
    assert len(granted) == 200 and granted.count(True) == 50


def test_a_bounded_counter_refuses_what_would_pass_its_ceiling_whole(cache: Cache, key: str) -> None:
    assert cache.add_within(key, 4, 5, 60) == (True, 4)
    # 2 more would make 6 > 5: refused whole, nothing added
    assert cache.add_within(key, 2, 5, 60) == (False, 4)
    assert cache.add_within(key, 1, 5, 60) == (True, 5)
    # giving back always applies
    assert cache.add_within(key, -3, 5, 60) == (True, 2)
    assert cache.get(key) == b"2"


def test_concurrent_adds_stop_exactly_at_the_ceiling(cache: Cache, key: str) -> None:
    added: list[bool] = []
    lock = threading.Lock()

    def add() -> None:
        for _ in range(20):
            ok, _ = cache.add_within(key, 3, 100, 60)
            with lock:
                added.append(ok)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert added.count(True) == 33 and cache.get(key) == b"99"


def test_a_bounded_counter_lives_its_ttl_from_its_first_add(cache: Cache, key: str) -> None:
    cache.add_within(key, 1, 10, ttl_seconds=0.3)
    cache.add_within(key, 1, 10, ttl_seconds=60)  # a later add does not extend it
    time.sleep(0.6)
    assert cache.get(key) is None
