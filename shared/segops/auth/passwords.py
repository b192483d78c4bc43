from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from segops.errors import RateLimited


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


class Passwords:
    """argon2id hashing; verification of an unknown user still costs one hash (no timing oracle).

    Each hash allocates `memory_kib`: at most `slots` run at once (sized to the function's memory), a
    caller waits `wait_seconds` for a slot and is then refused with a 429 rather than exhausting memory.
    """

    def __init__(self, time_cost: int, memory_kib: int, slots: int, wait_seconds: float) -> None:
        self._hasher = _hasher(time_cost, memory_kib)
        self._slots = threading.BoundedSemaphore(slots)
        self._wait_seconds = wait_seconds
        self._dummy = self._hasher.hash("segops-dummy-password")

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._wait_seconds):
            raise RateLimited("too many sign-ins at this moment; try again shortly", retry_after=1)
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        with self._slot():
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        with self._slot():
            try:
                return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False
