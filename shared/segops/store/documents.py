"""Typed access to control-plane documents: pydantic models, CAS updates, counters, unique claims."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from segops.errors import Conflict
from segops.store import keys
from segops.store.base import GenerationMismatch, Store

M = TypeVar("M", bound=BaseModel)

_CAS_ATTEMPTS = 50


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
        """Read-modify-write with compare-and-swap, retried on concurrent writers."""
        for _ in range(_CAS_ATTEMPTS):
            doc = self.store.get(key)
            if doc is None:
                return None
            updated = change(model.model_validate(doc.body))
            try:
                self.store.put(key, updated.model_dump(mode="json"), if_generation=doc.generation)
            except GenerationMismatch:
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

    def next_id(self, counter: str) -> int:
        """Monotonic integer ids from a CAS counter document."""
        key = keys.counter_key(counter)
        for _ in range(_CAS_ATTEMPTS):
            doc = self.store.get(key)
            current = int(doc.body["value"]) if doc else 0
            try:
                self.store.put(key, {"value": current + 1}, if_generation=doc.generation if doc else 0)
            except GenerationMismatch:
                continue
            return current + 1
        raise Conflict("too many concurrent id allocations", {"counter": counter})
