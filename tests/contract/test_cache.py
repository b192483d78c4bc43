"""One contract for every `Cache`: in-process and a real Valkey server (Redis protocol)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest
from redis.utils import HIREDIS_AVAILABLE
from segops.cache.base import Cache, CacheUnavailable
from segops.cache.redis_backend import KEYS_PER_COMMAND, RedisCache


def values(cache: Cache, keys: Sequence[str]) -> list[bytes | None]:
    """Each key's value, read with `get` one key at a time."""
    return [cache.get(k) for k in keys]


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_get_missing_is_none(cache: Cache, key: str) -> None:
    assert cache.get(key) is None


def test_set_get_round_trips_bytes(cache: Cache, key: str) -> None:
    value = bytes(range(256)) + "é".encode()
    cache.set(key, value, ttl_seconds=60)
    assert cache.get(key) == value


def test_set_overwrites(cache: Cache, key: str) -> None:
    cache.set(key, b"one", 60)
    cache.set(key, b"two", 60)
    assert cache.get(key) == b"two"


def test_entries_expire_after_their_ttl(cache: Cache, key: str) -> None:
    # GIVEN an entry with a 200 ms TTL
    cache.set(key, b"v", ttl_seconds=0.2)
    assert cache.get(key) == b"v"
    # THEN it disappears once the TTL has passed (and not before: a long TTL sibling stays)
    cache.set(key + ":long", b"v", ttl_seconds=60)
    assert eventually(lambda: cache.get(key) is None)
    assert cache.get(key + ":long") == b"v"


def test_add_only_sets_when_absent(cache: Cache, key: str) -> None:
    assert cache.add(key, b"first", 60) is True
    assert cache.add(key, b"second", 60) is False
    assert cache.get(key) == b"first"


def test_add_succeeds_again_after_expiry(cache: Cache, key: str) -> None:
    assert cache.add(key, b"first", 0.2) is True
    assert eventually(lambda: cache.get(key) is None)
    assert cache.add(key, b"again", 60) is True
    assert cache.get(key) == b"again"


def test_add_is_atomic_under_concurrency(cache: Cache, key: str) -> None:
    # GIVEN many threads racing to claim one key at the same moment
    start = threading.Barrier(16)
    winners: list[int] = []
    lock = threading.Lock()

    def claim(n: int) -> None:
        start.wait()
        if cache.add(key, str(n).encode(), 60):
            with lock:
                winners.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one claimed it, and the stored value is the winner's
    assert len(winners) == 1
    assert cache.get(key) == str(winners[0]).encode()


def test_add_many_claims_each_absent_key_on_its_own(cache: Cache, key: str) -> None:
    # GIVEN one key already held by someone else
    cache.set(key + ":held", b"other", 60)
    # WHEN three keys are added in one call
    added = cache.add_many([key + ":a", key + ":held", key + ":b"], b"mine", 60)
    # THEN the absent ones are set, the held one is untouched (no all-or-nothing)
    assert added == [True, False, True]
    assert values(cache, [key + ":a", key + ":held", key + ":b", key + ":never"]) == [b"mine", b"other", b"mine", None]
    assert cache.add_many([], b"x", 60) == []


def test_add_many_answers_each_key_of_a_flush_sized_claim_in_order(cache: Cache, key: str) -> None:
    # GIVEN a flush's worth of claim keys, every seventh one already held by another flush
    keys = [f"{key}:{i}" for i in range(20_000)]
    for k in keys[::7]:
        cache.set(k, b"other", 60)
    # WHEN they are claimed in one call
    added = cache.add_many(keys, b"mine", 60)
    # THEN each answer is its own key's, in order: the held ones refused and untouched, the rest set
    assert added == [i % 7 != 0 for i in range(len(keys))]
    assert values(cache, keys) == [b"other" if i % 7 == 0 else b"mine" for i in range(len(keys))]
    # AND claiming the same keys again refuses every one of them
    assert not any(cache.add_many(keys, b"again", 60))
    # AND once the claimed ones are deleted (in one call), only the other holder's keys are left
    cache.delete(*(k for i, k in enumerate(keys) if i % 7 != 0))
    assert values(cache, keys) == [b"other" if i % 7 == 0 else None for i in range(len(keys))]


def test_add_many_retried_by_its_caller_finds_its_own_claims(cache: Cache, key: str) -> None:
    # GIVEN keys claimed with a caller's value (its reply lost: the client retries the call), one of
    # them held by someone else
    keys = [f"{key}:{i}" for i in range(3 * KEYS_PER_COMMAND + 5)]
    other = 2 * KEYS_PER_COMMAND + 1  # in the third step on Valkey
    cache.set(keys[other], b"other", 60)
    first = cache.add_many(keys, b"flush-1", 60)
    # WHEN the same caller claims them again
    again = cache.add_many(keys, b"flush-1", 60)
    # THEN it holds the same keys as the first time, and the other holder keeps its key
    assert again == first == [i != other for i in range(len(keys))]
    assert cache.get(keys[other]) == b"other"


def test_release_many_deletes_only_the_keys_that_hold_the_callers_value(cache: Cache, key: str) -> None:
    # GIVEN a flush's claims over several steps, two of which another caller holds: one was never
    # the flush's, one expired and was claimed again by someone else
    keys = [f"{key}:{i}" for i in range(2 * KEYS_PER_COMMAND + 7)]
    never, retaken = 3, KEYS_PER_COMMAND + 2  # in the first and the second step on Valkey
    cache.set(keys[never], b"other", 60)
    assert cache.add_many(keys, b"flush-1", 60) == [i != never for i in range(len(keys))]
    cache.set(keys[retaken], b"flush-2", 60)
    # WHEN the flush releases every key it claimed, the retaken one included
    cache.release_many([k for i, k in enumerate(keys) if i != never], b"flush-1")
    # THEN its own claims are gone and the other callers' are untouched
    left = {k: v for k, v in zip(keys, values(cache, keys), strict=True) if v is not None}
    assert left == {keys[never]: b"other", keys[retaken]: b"flush-2"}
    # AND releasing keys that are absent or held by others is harmless
    cache.release_many([*keys, key + ":never"], b"flush-1")
    cache.release_many([], b"flush-1")
    assert values(cache, [keys[never], keys[retaken]]) == [b"other", b"flush-2"]
    # AND a released key can be claimed again at once
    assert cache.add_many([keys[0]], b"flush-3", 60) == [True]


def test_add_many_entries_expire_after_their_ttl(cache: Cache, key: str) -> None:
    assert cache.add_many([key + ":a", key + ":b"], b"v", 0.2) == [True, True]
    assert eventually(lambda: values(cache, [key + ":a", key + ":b"]) == [None, None])
    assert cache.add_many([key + ":a"], b"again", 60) == [True]


def test_add_many_is_one_step_under_concurrency(cache: Cache, key: str) -> None:
    # GIVEN eight threads claiming the same five keys at the same moment
    keys = [f"{key}:{i}" for i in range(5)]
    start = threading.Barrier(8)
    won: dict[str, list[int]] = {k: [] for k in keys}
    lock = threading.Lock()

    def claim(n: int) -> None:
        start.wait()
        for k, ok in zip(keys, cache.add_many(keys, str(n).encode(), 60), strict=True):
            if ok:
                with lock:
                    won[k].append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every key has exactly one winner, whose value it holds, and it is one caller for all keys
    # (calls do not interleave: two claimers of overlapping keys never split them and both stall)
    assert all(len(winners) == 1 for winners in won.values())
    assert values(cache, keys) == [str(won[k][0]).encode() for k in keys]
    assert len({winners[0] for winners in won.values()}) == 1


def test_incr_counts_atomically_and_restarts_after_its_ttl(cache: Cache, key: str) -> None:
    # GIVEN sixteen threads counting one key at the same moment
    start = threading.Barrier(16)
    seen: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        start.wait()
        count = cache.incr(key, 0.5)
        with lock:
            seen.append(count)

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every hit got its own number, the counter reads back, and later hits do not extend its life
    assert sorted(seen) == list(range(1, 17))
    assert cache.get(key) == b"16"
    assert cache.incr(key, 60) == 17
    assert eventually(lambda: cache.get(key) is None)
    assert cache.incr(key, 60) == 1


def test_delete_many_and_missing(cache: Cache, key: str) -> None:
    cache.set(key + ":a", b"1", 60)
    cache.set(key + ":b", b"2", 60)
    cache.delete(key + ":a", key + ":b", key + ":never")
    cache.delete()
    assert cache.get(key + ":a") is None
    assert cache.get(key + ":b") is None


def test_check_passes_when_reachable(cache: Cache) -> None:
    cache.check()


def test_redis_check_fails_when_unreachable() -> None:
    from tests.support.servers import free_port

    # Unreachable is CacheUnavailable (a 503 where nothing falls back), caused by the connection error.
    with pytest.raises(CacheUnavailable) as raised:
        RedisCache(f"redis://127.0.0.1:{free_port()}/0").check()
    assert "connect" in str(raised.value.__cause__).lower()


@pytest.mark.parametrize("call", ["add_many", "release_many", "delete"])
def test_pipelined_multi_key_calls_fail_as_unavailable_when_unreachable(call: str) -> None:
    from tests.support.servers import free_port

    # GIVEN no server (breaker off, so every call tries the network); the keys span several commands
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", breaker_seconds=0)
    keys = [f"k{i}" for i in range(1200)]
    calls = {
        "add_many": lambda: cache.add_many(keys, b"v", 60),
        "release_many": lambda: cache.release_many(keys, b"v"),
        "delete": lambda: cache.delete(*keys),
    }
    # THEN the call fails as CacheUnavailable, as single commands do (the writer then claims in process)
    with pytest.raises(CacheUnavailable):
        calls[call]()


def test_set_many_sets_every_item_with_its_ttl(cache: Cache, key: str) -> None:
    cache.set_many({key + ":a": b"1", key + ":b": b"2"}, 0.2)
    assert values(cache, [key + ":a", key + ":b"]) == [b"1", b"2"]
    assert eventually(lambda: values(cache, [key + ":a", key + ":b"]) == [None, None])
    cache.set_many({}, 60)


def test_swap_sets_only_over_the_expected_value(cache: Cache, key: str) -> None:
    # GIVEN an absent key: only a swap expecting absence sets it
    assert cache.swap(key, b"other", b"v1", 60) is False
    assert cache.get(key) is None
    assert cache.swap(key, None, b"v1", 60) is True
    # THEN a swap expecting absence, or a stale value, leaves it alone; the current value replaces it
    assert cache.swap(key, None, b"v2", 60) is False
    assert cache.swap(key, b"v0", b"v2", 60) is False
    assert cache.get(key) == b"v1"
    assert cache.swap(key, b"v1", b"v2", 0.2) is True
    assert cache.get(key) == b"v2"
    # AND the swapped value has its own TTL
    assert eventually(lambda: cache.get(key) is None)


def test_swap_is_atomic_under_concurrency(cache: Cache, key: str) -> None:
    # GIVEN sixteen threads swapping from the same value at the same moment
    cache.set(key, b"seen", 60)
    start = threading.Barrier(16)
    winners: list[int] = []
    lock = threading.Lock()

    def swap(n: int) -> None:
        start.wait()
        if cache.swap(key, b"seen", str(n).encode(), 60):
            with lock:
                winners.append(n)

    threads = [threading.Thread(target=swap, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one did, and the key holds its value
    assert len(winners) == 1
    assert cache.get(key) == str(winners[0]).encode()


def test_the_valkey_client_packs_and_parses_with_hiredis(valkey_url: str) -> None:
    # GIVEN the Valkey cache's client (hiredis is a runtime dependency: a 50,000-key claim packs and
    # parses ~2x faster with it)
    cache = RedisCache(valkey_url)
    cache.check()
    connection = cache._client.connection_pool.get_connection()
    try:
        # THEN its connections speak the protocol through hiredis, not redis-py's Python fallback
        assert HIREDIS_AVAILABLE
        assert type(connection._parser).__name__ == "_HiredisParser"
        assert type(connection._command_packer).__name__ == "HiredisRespSerializer"
    finally:
        cache._client.connection_pool.release(connection)
