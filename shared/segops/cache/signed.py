"""Cache entries that authenticate someone are signed: whoever can write to Valkey (a neighbour in
the VPC, a leaked connection string) must not be able to mint an API-key record with a tenant and role.

An entry is `<hex HMAC-SHA256 of the cache key and payload>.<payload>`, under `SEGOPS_CACHE_SIGNING_KEY`
(a Secret Manager secret in production, granted only to the functions that authenticate API keys).
Binding the cache key stops a valid entry from being copied under another key's fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac

from segops.cache.base import Cache


class SignedEntries:
    def __init__(self, cache: Cache, signing_key: str) -> None:
        if not signing_key:
            raise RuntimeError("SEGOPS_CACHE_SIGNING_KEY is not set for this function; add it to its manifest secrets")
        self._cache = cache
        self._key = signing_key.encode()

    def _mac(self, key: str, payload: bytes) -> bytes:
        return hmac.new(self._key, key.encode() + b"\n" + payload, hashlib.sha256).hexdigest().encode()

    def set(self, key: str, payload: bytes, ttl_seconds: float) -> None:
        self._cache.set(key, self._mac(key, payload) + b"." + payload, ttl_seconds)

    def get(self, key: str) -> bytes | None:
        """The payload, or None when absent or not signed by us (treated as a miss, never trusted)."""
        raw = self._cache.get(key)
        if raw is None:
            return None
        mac, dot, payload = raw.partition(b".")
        if not dot or not hmac.compare_digest(mac, self._mac(key, payload)):
            return None
        return payload
