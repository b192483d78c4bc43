from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class GenerationMismatch(Exception):
    """The document changed (or exists / does not exist) since the caller read it."""


@dataclass(frozen=True)
class Document:
    key: str
    body: dict[str, Any]
    generation: int


class Store(Protocol):
    """Narrow on purpose (get, put-if-generation, list-prefix, delete) so a database can replace it.

    `if_generation` semantics follow GCS: `None` writes unconditionally, `0` only creates,
    any other value writes only if the current generation equals it.
    """

    def get(self, key: str) -> Document | None: ...

    def put(self, key: str, body: dict[str, Any], if_generation: int | None = None) -> int: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str, if_generation: int | None = None) -> None: ...

    def check(self) -> None: ...
