from __future__ import annotations

import hashlib
from typing import IO

import pytest
from segops.exports.pipe import ProducerFailed, pipe

CHUNK = bytes(range(256)) * 4096  # 1 MiB


def produce(count: int) -> object:
    def run(sink: IO[bytes]) -> int:
        for _ in range(count):
            sink.write(CHUNK)
        return count * len(CHUNK)

    return run


def digest(source: IO[bytes]) -> tuple[str, int, int]:
    h = hashlib.sha256()
    total = 0
    while block := source.read(64 * 1024):
        h.update(block)
        total += len(block)
    return h.hexdigest(), total, source.tell()


def test_bytes_pass_through_unchanged_with_position() -> None:
    # GIVEN a producer of 8 MiB WHEN piped into a hashing consumer
    found, total, position = pipe(produce(8), digest)  # type: ignore[arg-type]
    # THEN the consumer saw exactly those bytes and tell() tracked them
    assert found == hashlib.sha256(CHUNK * 8).hexdigest()
    assert total == position == 8 * len(CHUNK)


def test_a_failing_producer_fails_the_consumer_not_silently_truncates() -> None:
    # GIVEN a producer that dies after 3 MiB
    def broken(sink: IO[bytes]) -> None:
        for _ in range(3):
            sink.write(CHUNK)
        raise RuntimeError("warehouse went away")

    # WHEN piped THEN the consumer's read raises instead of returning a short stream
    with pytest.raises(ProducerFailed, match="warehouse went away"):
        pipe(broken, digest)


def test_a_failing_consumer_unblocks_the_producer() -> None:
    # GIVEN a consumer that gives up after one read while the producer has 64 MiB to write
    def quitter(source: IO[bytes]) -> None:
        source.read(1024)
        raise ValueError("upload refused")

    # WHEN piped THEN the consumer's error surfaces and the call returns (no deadlock)
    with pytest.raises(ValueError, match="upload refused"):
        pipe(produce(64), quitter)  # type: ignore[arg-type]
