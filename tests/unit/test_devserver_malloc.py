"""The dev server bounds glibc's malloc arenas before its threads start and hands freed memory back to
the system periodically (issue #18: `make soak` RSS).

Each case runs in a fresh interpreter: an arena bound only applies to arenas made after it is set."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "malloc_info"), reason="glibc only (malloc_info and mallopt)"
)

# Twenty live threads, each allocating through malloc (blocks above pymalloc's 512 bytes), then the
# count of arenas in glibc's own report (`malloc_info`: one <heap nr=...> per arena).
PROBE = textwrap.dedent(
    """
    import ctypes, sys, tempfile, threading
    from segops.devserver import tune_malloc
    tuned = sys.argv[1] == "tuned" and tune_malloc()
    barrier = threading.Barrier(20)
    kept = []
    def allocate():
        kept.append([bytes(4096) for _ in range(64)])
        barrier.wait()
    threads = [threading.Thread(target=allocate) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        print(tuned, open(report.name).read().count("<heap nr="))
    """
)


def arenas(mode: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    tuned, count = done.stdout.split()
    return tuned, int(count)


def test_tune_malloc_keeps_twenty_threads_in_two_arenas() -> None:
    # GIVEN twenty threads allocating at once, WHEN the process did not tune malloc THEN glibc gave
    # them several arenas (up to 8 per core), WHEN it did (the dev server, first thing) THEN two.
    tuned, untuned = arenas("default")
    assert tuned == "False" and untuned > 2
    assert arenas("tuned") == ("True", 2)


# 200 MB in 4 KiB blocks (malloc's heap, below its mmap threshold), then every block freed but one in
# 64: the kept ones pin the freed pages between them, which glibc gives back only from a heap's top.
TRIM_PROBE = textwrap.dedent(
    """
    import sys
    from segops.devserver import trim_heap
    def rss_kib():
        return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1])
    blocks = [bytes(4096) for _ in range(50_000)]
    kept = blocks[::64] + [blocks[-1]]
    del blocks
    before = rss_kib()
    trimmed = sys.argv[1] == "trim" and trim_heap()
    print(trimmed, before, rss_kib())
    """
)


def resident_after_free(mode: str) -> tuple[str, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", TRIM_PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    trimmed, before, after = done.stdout.split()
    return trimmed, int(before), int(after)


def test_trim_heap_returns_freed_pages_that_glibc_keeps() -> None:
    # GIVEN ~200 MB freed between live blocks: glibc keeps it resident by itself
    _, kept_before, kept_after = resident_after_free("none")
    assert kept_after > kept_before - 20_000
    # WHEN the heap is trimmed THEN most of it is returned to the system
    trimmed, before, after = resident_after_free("trim")
    assert trimmed == "True"
    assert before - after > 100_000, (before, after)


def test_the_periodic_trim_stops_when_asked() -> None:
    from segops.devserver import trim_heap_periodically

    stop = threading.Event()
    thread = trim_heap_periodically(0.01, stop)
    time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
