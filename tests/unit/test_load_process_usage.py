from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.load import THREAD_NAMES, ServerGone, process_usage, thread_cpu_seconds


def test_a_running_process_reports_its_memory_and_descriptors() -> None:
    usage = process_usage(os.getpid())
    assert usage is not None and usage["rss_kib"] > 0 and usage["open_fds"] > 0
    assert usage["open_fds_max"] >= usage["open_fds"]


def test_a_server_that_died_is_reported_as_gone_not_a_stop_iteration() -> None:
    # GIVEN a child that exited and is not reaped yet (a zombie: /proc has its status, no VmRSS)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1].startswith("Z"):
        time.sleep(0.01)
    with pytest.raises(ServerGone):
        process_usage(child.pid)
    # AND once reaped (no /proc entry at all)
    child.wait()
    with pytest.raises(ServerGone):
        process_usage(child.pid)


# Two threads named like the HTTP server's burn ~0.3 s of CPU each, then wait, alive, to be read.
_SPINNERS = """
import sys, threading, time
spun, release = threading.Barrier(3), threading.Event()
def spin():
    end = time.thread_time() + 0.3
    while time.thread_time() < end:
        pass
    spun.wait()
    release.wait()
threads = [threading.Thread(target=spin, name=f"waitress-{n}") for n in (3, 11)]
for t in threads: t.start()
spun.wait()
print("spun", flush=True)
sys.stdin.read()
release.set()
"""


@pytest.mark.parametrize("named", [True, False])
def test_thread_cpu_is_reported_by_kind_of_thread(named: bool) -> None:
    # GIVEN a process whose two `waitress-N` threads burned CPU, started with or without thread names
    env = {**os.environ, "PYTHONPATH": str(THREAD_NAMES) if named else ""}
    child = subprocess.Popen(
        [sys.executable, "-c", _SPINNERS], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "spun\n"
        # WHEN its threads' CPU is read
        seconds = thread_cpu_seconds(child.pid)
    finally:
        child.communicate("")
    # THEN named, both count under one kind, their numbers dropped; unnamed, they read as the process
    if named:
        assert seconds["waitress"] >= 0.5
    else:
        assert "waitress" not in seconds and max(seconds.values()) >= 0.5
