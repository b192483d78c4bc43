from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

from segops.cache.base import CacheUnavailable, TokenBucket

T = TypeVar("T")

log = logging.getLogger("segops.cache")

# KEYS[1] = the key, ARGV = expected value ("" with ARGV[3] = "absent": expected absent), new value,
# expectation kind, TTL in ms. One round trip, atomic on the server.
_SWAP = """
local current = redis.call('GET', KEYS[1])
if ARGV[3] == 'absent' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
return 1
"""


# KEYS: the buckets. ARGV: cost, now (ms), then capacity and tokens per ms of each bucket. A bucket is a
# hash {t: tokens, s: stamp ms}; an absent one is full. Tokens go back as strings: Redis would truncate
# Lua numbers to integers. Every bucket is read before any is written, so a refusal takes nothing.
_TAKE_TOKENS = """
local cost = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local levels, stamps, taken = {}, {}, 1
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[1 + 2 * i])
  local rate = tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', key, 't', 's')
  local tokens, stamp = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or stamp == nil then
    tokens, stamp = capacity, now
  elseif now > stamp then
    tokens, stamp = math.min(capacity, tokens + (now - stamp) * rate), now
  end
  levels[i], stamps[i] = tokens, stamp
  if tokens < cost then taken = 0 end
end
local out = {taken}
for i, key in ipairs(KEYS) do
  local tokens = levels[i]
  if taken == 1 then
    tokens = tokens - cost
    local capacity = tonumber(ARGV[1 + 2 * i])
    local rate = tonumber(ARGV[2 + 2 * i])
    redis.call('HSET', key, 't', string.format('%.6f', tokens), 's', stamps[i])
    redis.call('PEXPIRE', key, math.ceil((capacity - tokens) / rate) + 1000)
  end
  out[i + 1] = string.format('%.6f', tokens)
end
return out
"""

# KEYS: the claims. ARGV: value, TTL in ms. Each absent key is set (SET NX, its own TTL); returns the
# positions (1-based) of the keys held with another value, usually none. A key already holding this
# value is this caller's: a step retried after its reply was lost (the client retries once on a
# timeout) must not find its own claims "held". Atomic on the server: no other client's command runs
# inside one step of `KEYS_PER_COMMAND` keys.
_ADD_MANY = """
local held = {}
for i, key in ipairs(KEYS) do
  if not redis.call('SET', key, ARGV[1], 'PX', ARGV[2], 'NX') and redis.call('GET', key) ~= ARGV[1] then
    held[#held + 1] = i
  end
end
return held
"""

# KEYS: claims. ARGV: the caller's value. Deletes the keys that still hold it (compare and delete in
# one step: a claim that expired and was taken by another caller meanwhile stays that caller's). One
# MGET and one DEL per step: a GET and a DEL per key took twice as long (50,000 keys: ~280 ms against
# ~150 ms for an MGET and a DEL from the client, docs/performance.md).
_RELEASE_MANY = """
local values = redis.call('MGET', unpack(KEYS))
local mine = {}
for i, key in ipairs(KEYS) do
  if values[i] == ARGV[1] then mine[#mine + 1] = key end
end
if #mine > 0 then redis.call('DEL', unpack(mine)) end
return #mine
"""

# KEYS[1]: the counter. ARGV: amount, ceiling, ttl (ms).
_ADD_WITHIN = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if amount > 0 and current + amount > tonumber(ARGV[2]) then return {0, current} end
local total = redis.call('INCRBY', KEYS[1], amount)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, total}
"""


# Keys per command of `add_many` and `release_many` (scripts) and `delete` (DEL), which send every
# command of a call in one pipelined round trip. Valkey runs one command at a time:
# a 50,000-key claim as one MULTI/EXEC ran 93 ms here, as one script longer; in scripts of 2,000 keys
# 12-13 ms each, of 500 keys 4-5 ms (its latency monitor), for ~15% more time in all; one DEL of
# 50,000 keys ran 38-42 ms, one MGET 18 ms (docs/performance.md, "Claims on Valkey").
KEYS_PER_COMMAND = 500


def _steps(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    """`keys` in commands of at most `KEYS_PER_COMMAND`, in order."""
    for start in range(0, len(keys), KEYS_PER_COMMAND):
        yield keys[start : start + KEYS_PER_COMMAND]


def _ms(ttl_seconds: float) -> int:
    return max(1, int(ttl_seconds * 1000))


# Error replies of a server that cannot serve right now, whatever the command (redis-py's classes,
# and the reply prefixes it leaves as a plain ResponseError).
_UNSERVICEABLE = (
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
_UNSERVICEABLE_REPLIES = ("MISCONF", "NOREPLICAS", "BUSY ", "LOADING", "READONLY", "OOM", "MASTERDOWN")


def _unserviceable(exc: redis.RedisError) -> bool:
    return isinstance(exc, _UNSERVICEABLE) or str(exc).startswith(_UNSERVICEABLE_REPLIES)


class Breaker:
    """After a failed call, calls fail at once for `open_seconds`; then one call probes (the others keep
    failing fast until it returns). A dead cache thus costs one timeout per `open_seconds` per process,
    not one per request."""

    def __init__(self, open_seconds: float) -> None:
        self._open_seconds = open_seconds
        self._open_until = 0.0
        self._lock = threading.Lock()

    def admit(self) -> None:
        if self._open_until == 0.0:
            return
        with self._lock:
            now = time.monotonic()
            if now < self._open_until:
                raise CacheUnavailable()
            # This caller probes; everyone else fails fast until it is done.
            self._open_until = now + self._open_seconds

    def succeeded(self) -> None:
        self._open_until = 0.0

    def failed(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self._open_seconds


class RedisCache:
    """Valkey/Redis (Memorystore in production) through the `redis` client, behind a circuit breaker:
    transport failures surface as `CacheUnavailable` within `timeout_seconds`."""

    def __init__(self, url: str, timeout_seconds: float = 0.25, breaker_seconds: float = 5.0) -> None:
        # One retry on a fresh connection (a pooled connection to a restarted server fails once).
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),
        )
        # Sent by EVALSHA (the script body only once per server, on NOSCRIPT).
        self._swap = self._client.register_script(_SWAP)
        self._take_tokens = self._client.register_script(_TAKE_TOKENS)
        self._add_within = self._client.register_script(_ADD_WITHIN)
        self._add_many = self._client.register_script(_ADD_MANY)
        self._release_many = self._client.register_script(_RELEASE_MANY)
        self._breaker = Breaker(breaker_seconds)
        if not HIREDIS_AVAILABLE:
            # A declared dependency: without it the client packs and parses in Python (a 50,000-key
            # claim ~2x slower, every reply slower).
            log.warning("hiredis is not installed: the Valkey client falls back to its pure-Python protocol")

    def _call(self, command: Callable[[], T]) -> T:
        self._breaker.admit()
        try:
            result = command()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._breaker.failed()
            raise CacheUnavailable() from exc
        except redis.RedisError as exc:
            if _unserviceable(exc):
                # Reachable but not serving (a read-only replica, full under `noeviction`, MISCONF,
                # a failover): to callers it is the outage they already degrade through.
                self._breaker.failed()
                raise CacheUnavailable() from exc
            self._breaker.succeeded()  # any other error reply is the caller's: the server works
            raise
        self._breaker.succeeded()
        return result

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda: self._client.get(key))
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._call(lambda: self._client.set(key, value, px=_ms(ttl_seconds)))

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        if not items:
            return
        pipe = self._client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(key, value, px=_ms(ttl_seconds))
        self._call(pipe.execute)

    def swap(self, key: str, expected: bytes | None, value: bytes, ttl_seconds: float) -> bool:
        kind = "absent" if expected is None else "value"
        args: list[bytes | str | int] = [expected or b"", value, kind, _ms(ttl_seconds)]
        return bool(self._call(lambda: self._swap(keys=[key], args=args)))

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return bool(self._call(lambda: self._client.set(key, value, px=_ms(ttl_seconds), nx=True)))

    def add_many(self, keys: Sequence[str], value: bytes, ttl_seconds: float) -> list[bool]:
        if not keys:
            return []
        # One script per step, all in one pipelined round trip: one request to pack and a few short
        # replies to read, instead of a queued command and its reply per key.
        args: list[bytes | int] = [value, _ms(ttl_seconds)]
        pipe = self._client.pipeline(transaction=False)
        for part in _steps(keys):
            self._add_many(keys=part, args=args, client=pipe)
        added = [True] * len(keys)
        for step, held in enumerate(self._call(pipe.execute)):
            for position in held:
                added[step * KEYS_PER_COMMAND + position - 1] = False
        return added

    def release_many(self, keys: Sequence[str], value: bytes) -> None:
        if not keys:
            return
        pipe = self._client.pipeline(transaction=False)
        for part in _steps(keys):
            self._release_many(keys=part, args=[value], client=pipe)
        self._call(pipe.execute)

    def incr(self, key: str, ttl_seconds: float) -> int:
        # SET NX starts the counter with its expiry; INCR keeps the expiry. One round trip.
        pipe = self._client.pipeline(transaction=True)
        pipe.set(key, b"0", px=_ms(ttl_seconds), nx=True)
        pipe.incr(key)
        return int(self._call(pipe.execute)[1])

    def take_tokens(self, buckets: Sequence[TokenBucket], cost: int, now_ms: int) -> tuple[bool, list[float]]:
        args: list[float] = [cost, now_ms]
        for bucket in buckets:
            args += [bucket.capacity, bucket.per_second / 1000]
        reply = self._call(lambda: self._take_tokens(keys=[b.key for b in buckets], args=args))
        return reply[0] == 1, [float(level) for level in reply[1:]]

    def add_within(self, key: str, amount: int, ceiling: int, ttl_seconds: float) -> tuple[bool, int]:
        reply = self._call(lambda: self._add_within(keys=[key], args=[amount, ceiling, _ms(ttl_seconds)]))
        return reply[0] == 1, int(reply[1])

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        pipe = self._client.pipeline(transaction=False)
        for part in _steps(keys):
            pipe.delete(*part)
        self._call(pipe.execute)

    def check(self) -> None:
        self._call(self._client.ping)
