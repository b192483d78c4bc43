from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.load import ServerGone, process_usage


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
