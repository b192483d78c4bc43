"""Connect a writer (the warehouse rendering a file) to a reader (the object-store upload) through an
OS pipe, so an export of any size flows through a fixed-size buffer instead of Python memory or /tmp
(which is RAM on Cloud Functions)."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from typing import IO, Any

Producer = Callable[[IO[bytes]], Any]
Consumer = Callable[[IO[bytes]], Any]


class ProducerFailed(Exception):
    """The writer side raised; the reader saw a premature end of stream and must not commit it."""


class _PipeReader(io.RawIOBase):
    """The read end, with `tell()` (resumable uploads ask for it) and the producer's failure surfaced
    at end of stream: a truncated export must fail the upload, never complete it."""

    def __init__(self, fd: int, finished: Callable[[], BaseException | None]) -> None:
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._finished = finished
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        if not count:
            error = self._finished()
            if error is not None:
                raise ProducerFailed(f"{type(error).__name__}: {error}") from error
            return 0
        self._position += count
        return count

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._file.close()
        super().close()


def pipe(produce: Producer, consume: Consumer, buffer_bytes: int = 256 * 1024) -> Any:
    """Run `produce(sink)` on a thread and `consume(source)` here; returns what `consume` returns.

    Raises the producer's error if it failed (the consumer then fails on the truncated stream too).
    """
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []
    result: list[Any] = []

    def run() -> None:
        try:
            with os.fdopen(write_fd, "wb", buffering=buffer_bytes) as sink:
                result.append(produce(sink))
        except BaseException as exc:  # handed to the consumer thread, which re-raises it
            failure.append(exc)

    writer = threading.Thread(target=run, name="segops-export-writer", daemon=True)

    def finished() -> BaseException | None:
        writer.join()
        return failure[0] if failure else None

    reader = io.BufferedReader(_PipeReader(read_fd, finished), buffer_bytes)
    writer.start()
    try:
        consumed = consume(reader)
    finally:
        # Closing the read end unblocks a writer whose consumer gave up (it gets EPIPE).
        reader.close()
        writer.join()
    if failure:
        raise ProducerFailed(f"{type(failure[0]).__name__}: {failure[0]}") from failure[0]
    return consumed
