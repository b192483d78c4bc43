"""The dev server bounds glibc's malloc arenas before its threads start (issue #18: `make soak` RSS).

Each case runs in a fresh interpreter: an arena bound only applies to arenas made after it is set."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

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
