from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from segops.cache.base import CacheUnavailable

T = TypeVar("T")

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


def _ms(ttl_seconds: float) -> int:
    return max(1, int(ttl_seconds * 1000))


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
        self._swap = self._client.register_script(_SWAP)
        self._breaker = Breaker(breaker_seconds)

    def _call(self, command: Callable[[], T]) -> T:
        self._breaker.admit()
        try:
            result = command()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._breaker.failed()
            raise CacheUnavailable() from exc
        except redis.RedisError:
            self._breaker.succeeded()  # an error reply: the server is reachable
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
        # One round trip in MULTI/EXEC: no other client's claims interleave, so two callers claiming
        # overlapping keys never each get a part of them (neither could then go on).
        pipe = self._client.pipeline(transaction=True)
        for key in keys:
            pipe.set(key, value, px=_ms(ttl_seconds), nx=True)
        return [bool(done) for done in self._call(pipe.execute)]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = self._call(lambda: self._client.mget(list(keys)))
        return [value if isinstance(value, bytes) else None for value in values]

    def incr(self, key: str, ttl_seconds: float) -> int:
        # SET NX starts the counter with its expiry; INCR keeps the expiry. One round trip.
        pipe = self._client.pipeline(transaction=True)
        pipe.set(key, b"0", px=_ms(ttl_seconds), nx=True)
        pipe.incr(key)
        return int(self._call(pipe.execute)[1])

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(lambda: self._client.delete(*keys))

    def check(self) -> None:
        self._call(self._client.ping)
