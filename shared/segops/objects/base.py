from __future__ import annotations

from datetime import timedelta
from typing import IO, Protocol


class ObjectStore(Protocol):
    def upload(self, key: str, source: IO[bytes], content_type: str) -> int:
        """Stream `source` into the object; returns its size."""
        ...

    def open(self, key: str) -> IO[bytes]: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        """A short-lived download URL, or None when the caller must stream (local mode)."""
        ...

    def list(self, prefix: str) -> list[str]: ...

    def check(self) -> None: ...
