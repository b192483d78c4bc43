from __future__ import annotations

from collections.abc import Sequence

import redis


class RedisCache:
    """Valkey/Redis (Memorystore in production) through the `redis` client."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def get(self, key: str) -> bytes | None:
        value = self._client.get(key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._client.set(key, value, px=max(1, int(ttl_seconds * 1000)))

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        return bool(self._client.set(key, value, px=max(1, int(ttl_seconds * 1000)), nx=True))

    def add_many(self, keys: Sequence[str], value: bytes, ttl_seconds: float) -> list[bool]:
        if not keys:
            return []
        # One round trip in MULTI/EXEC: no other client's claims interleave, so two callers claiming
        # overlapping keys never each get a part of them (neither could then go on).
        pipe = self._client.pipeline(transaction=True)
        for key in keys:
            pipe.set(key, value, px=max(1, int(ttl_seconds * 1000)), nx=True)
        return [bool(done) for done in pipe.execute()]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = self._client.mget(list(keys))
        return [value if isinstance(value, bytes) else None for value in values]

    def incr(self, key: str, ttl_seconds: float) -> int:
        # SET NX starts the counter with its expiry; INCR keeps the expiry. One round trip.
        pipe = self._client.pipeline(transaction=True)
        pipe.set(key, b"0", px=max(1, int(ttl_seconds * 1000)), nx=True)
        pipe.incr(key)
        return int(pipe.execute()[1])

    def delete(self, *keys: str) -> None:
        if keys:
            self._client.delete(*keys)

    def check(self) -> None:
        self._client.ping()
