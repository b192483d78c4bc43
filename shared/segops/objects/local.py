from __future__ import annotations

import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path
from typing import IO

from segops.store.keys import validate_key


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    def upload(self, key: str, source: IO[bytes], content_type: str) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A leading dot can never start a valid key segment, so partial uploads are never listed,
        # and the process/thread suffix keeps concurrent uploads of one key apart.
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
        with open(tmp, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        os.replace(tmp, path)
        return path.stat().st_size

    def open(self, key: str) -> IO[bytes]:
        return open(self._path(key), "rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        return None

    def list(self, prefix: str) -> list[str]:
        return sorted(
            p.relative_to(self._root).as_posix()
            for p in self._root.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.relative_to(self._root).as_posix().startswith(prefix)
        )

    def check(self) -> None:
        if not self._root.is_dir():
            raise OSError(f"object directory {self._root} is missing")
