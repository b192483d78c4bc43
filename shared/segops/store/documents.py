"""Typed access to control-plane documents: pydantic models, CAS updates, counters, unique claims."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from segops.errors import Conflict
from segops.store import keys
from segops.store.base import GenerationMismatch, Store
from segops.store.id_blocks import BLOCKS

M = TypeVar("M", bound=BaseModel)

_CAS_ATTEMPTS = 50
# Backoff between compare-and-swap attempts on one document: exponential with full jitter, so
# writers that collided spread out instead of colliding again in lockstep (GCS sustains about one
# write per second per object). 50 attempts wait at most about 90 s in all, half that on average.
_CAS_BACKOFF_BASE_SECONDS = 0.01
_CAS_BACKOFF_MAX_SECONDS = 2.0


def cas_backoff(attempt: int) -> None:
    """Wait before compare-and-swap attempt `attempt + 1` after `attempt` (1-based) lost a race."""
    ceiling = min(_CAS_BACKOFF_MAX_SECONDS, _CAS_BACKOFF_BASE_SECONDS * 2 ** min(attempt - 1, 20))
    time.sleep(random.uniform(0, ceiling))  # jitter, not a secret


class DocumentRepository:
    """Everything in the control plane reads and writes through here."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, key: str, model: type[M]) -> M | None:
        doc = self.store.get(key)
        return None if doc is None else model.model_validate(doc.body)

    def create(self, key: str, value: BaseModel) -> None:
        """Write only if absent; `Conflict` if the key exists."""
        try:
            self.store.put(key, value.model_dump(mode="json"), if_generation=0)
        except GenerationMismatch as exc:
            raise Conflict("already exists", {"key": key.rsplit("/", 1)[-1]}) from exc

    def save(self, key: str, value: BaseModel) -> None:
        self.store.put(key, value.model_dump(mode="json"))

    def update(self, key: str, model: type[M], change: Callable[[M], M]) -> M | None:
        """Read-modify-write with compare-and-swap, retried (with `cas_backoff`) on concurrent writers."""
        for attempt in range(1, _CAS_ATTEMPTS + 1):
            doc = self.store.get(key)
            if doc is None:
                return None
            updated = change(model.model_validate(doc.body))
            try:
                self.store.put(key, updated.model_dump(mode="json"), if_generation=doc.generation)
            except GenerationMismatch:
                cas_backoff(attempt)
                continue
            return updated
        raise Conflict("too many concurrent updates", {"key": key.rsplit("/", 1)[-1]})

    def list(self, prefix: str, model: type[M]) -> list[M]:
        values = []
        for key in self.store.list(prefix):
            value = self.load(key, model)
            if value is not None:
                values.append(value)
        return values

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def next_id(self, counter: str, start: Callable[[], int] | None = None) -> int:
        """The next number of a strictly increasing sequence (a CAS counter document): for what is
        ordered and written by few at a time, such as one connector's syncs or one tenant's
        membership versions. `start()` gives the value a missing counter continues from."""
        return self._advance(counter, 1, start)

    def new_id(self, kind: str) -> int:
        """A new global id of `kind` (tenants, segments, ...): unique, not ordered (`id_blocks`)."""
        return BLOCKS.take(self.store, kind, lambda size: self._advance(kind, size, None))

    def _advance(self, counter: str, step: int, start: Callable[[], int] | None) -> int:
        key = keys.counter_key(counter)
        for attempt in range(1, _CAS_ATTEMPTS + 1):
            doc = self.store.get(key)
            current = int(doc.body["value"]) if doc else (start() if start else 0)
            try:
                self.store.put(key, {"value": current + step}, if_generation=doc.generation if doc else 0)
            except GenerationMismatch:
                cas_backoff(attempt)
                continue
            return current + step
        raise Conflict("too many concurrent id allocations", {"counter": counter})
