from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from segops.errors import DependencyDown


class CacheUnavailable(DependencyDown):
    """The cache server cannot be reached. Callers with a source of truth (API keys, sessions, membership,
    event-id claims) fall back to it; anything else becomes a 503 with `Retry-After`."""

    def __init__(self) -> None:
        super().__init__("the cache is unavailable, retry later", {"dependency": "cache"})


@dataclass(frozen=True)
class TokenBucket:
    """A token bucket: holds at most `capacity` tokens, refilled at `per_second`; a new one is full."""

    key: str
    capacity: int
    per_second: float

    def refilled(self, tokens: float, stamp_ms: int, now_ms: int) -> tuple[float, int]:
        """Tokens and stamp after refilling from `stamp_ms` to `now_ms` (never backwards)."""
        if now_ms <= stamp_ms:
            return tokens, stamp_ms
        return min(float(self.capacity), tokens + (now_ms - stamp_ms) * self.per_second / 1000), now_ms

    def seconds_to_full(self, tokens: float) -> float:
        """After this long untouched the bucket is full again, as good as absent."""
        return max(0.0, self.capacity - tokens) / self.per_second


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
        """`add` for each key in one round trip, applied in steps (in process: all keys at once; on
        Valkey: `redis_backend.KEYS_PER_COMMAND` keys at a time): no other caller's `add` interleaves within
        a step (each key is still set only if absent: not all or none). A key that already holds `value`
        answers True: a claim's value is unique to its caller, so a call retried after its reply was
        lost finds its own claims, not someone else's."""
        ...

    def release_many(self, keys: Sequence[str], value: bytes) -> None:
        """Delete each key that holds `value`, in one round trip, each key checked and deleted in one
        step (`add_many`'s steps): a key that expired and was then claimed by another caller is left to
        that caller."""
        ...

    def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one to a counter and return it (atomic); a new counter lives `ttl_seconds` from its first hit."""
        ...

    def take_tokens(self, buckets: Sequence[TokenBucket], cost: int, now_ms: int) -> tuple[bool, list[float]]:
        """Take `cost` tokens from every bucket, or from none if one holds fewer (atomic, one round trip).

        Buckets refill from the time of their last take up to `now_ms` (a caller's clock behind the stored
        one refills nothing). Returns whether the tokens were taken and each bucket's tokens afterwards.
        """
        ...

    def add_within(self, key: str, amount: int, ceiling: int, ttl_seconds: float) -> tuple[bool, int]:
        """Add `amount` to a counter unless that takes it past `ceiling` (atomic, one round trip); a negative
        `amount` always applies. Returns whether it was added and the counter afterwards; a new counter
        lives `ttl_seconds`."""
        ...

    def delete(self, *keys: str) -> None: ...

    def check(self) -> None: ...
