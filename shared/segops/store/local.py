from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from segops.store.base import Document, GenerationMismatch
from segops.store.keys import validate_key


class LocalStore:
    """JSON documents in a directory; a file lock makes CAS safe across threads and processes."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        self._lock_path = self._root / ".lock"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self._lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _path(self, key: str) -> Path:
        return self._root / (validate_key(key) + ".json")

    def _read(self, key: str) -> Document | None:
        try:
            raw = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        stored = orjson.loads(raw)
        return Document(key=key, body=stored["body"], generation=stored["generation"])

    def get(self, key: str) -> Document | None:
        return self._read(key)

    def put(self, key: str, body: dict[str, Any], if_generation: int | None = None) -> int:
        with self._locked():
            current = self._read(key)
            current_generation = current.generation if current else 0
            if if_generation is not None and if_generation != current_generation:
                raise GenerationMismatch(key)
            generation = current_generation + 1
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(orjson.dumps({"generation": generation, "body": body}))
            os.replace(tmp, path)
            return generation

    def list(self, prefix: str) -> list[str]:
        base = self._root
        # Walk only the folder the prefix names in full (`tenants/7/outbox/x` → `tenants/7/outbox`):
        # listing one tenant's documents must not cost a walk of every tenant's.
        folder = base / prefix.rpartition("/")[0]
        keys = []
        for path in folder.rglob("*.json"):
            key = path.relative_to(base).as_posix()[: -len(".json")]
            if key.startswith(prefix):
                keys.append(key)
        return sorted(keys)

    def delete(self, key: str, if_generation: int | None = None) -> None:
        with self._locked():
            current = self._read(key)
            if current is None:
                if if_generation not in (None, 0):
                    raise GenerationMismatch(key)
                return
            if if_generation is not None and if_generation != current.generation:
                raise GenerationMismatch(key)
            self._path(key).unlink()

    def check(self) -> None:
        if not self._root.is_dir():
            raise OSError(f"store directory {self._root} is missing")
