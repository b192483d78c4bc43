"""The benchmarks' reading of what the machine's CPUs did during a run (`harness.machine_cores`)."""

from __future__ import annotations

import os
import time

import pytest

from benchmarks.harness import cores_by_state, machine_cores, machine_cpu_seconds

TICK = os.sysconf("SC_CLK_TCK")


STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _stat(*ticks: int) -> str:
    # /proc/stat's first line (its eight states, then guest times), a per-CPU line and more that must
    # not be read.
    return f"cpu  {' '.join(map(str, ticks))} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345 0 0\n"


def test_each_state_is_read_from_the_machine_line_in_seconds() -> None:
    reading = machine_cpu_seconds(_stat(1, 2, 3, 4, 5, 6, 7, 8))
    assert reading == {state: ticks / TICK for state, ticks in zip(STATES, range(1, 9), strict=True)}


def test_a_line_that_is_not_the_machine_total_is_no_reading() -> None:
    assert machine_cpu_seconds("cpu0 1 2 3 4 5 6 7 8\n") is None
    assert machine_cpu_seconds("cpu  1 2 3\n") is None


def test_cores_split_into_busy_idle_and_stolen() -> None:
    # GIVEN two readings 2 s apart: user 1.5 s, nice 0.1, system 0.3, irq 0.04, softirq 0.06 (busy 2 s),
    # idle 0.9 + iowait 0.1 (idle 1 s), steal 1 s: two CPUs' worth of 2 s
    seconds = {"user": 1.5, "nice": 0.1, "system": 0.3, "idle": 0.9, "iowait": 0.1, "irq": 0.04, "softirq": 0.06}
    before = machine_cpu_seconds(_stat(*[0] * 8))
    after = machine_cpu_seconds(_stat(*[round(seconds.get(state, 1.0) * TICK) for state in STATES]))
    assert before is not None and after is not None
    assert cores_by_state(before, after, 2.0) == {"busy": 1.0, "idle": 0.5, "steal": 0.5}


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc only")
def test_a_live_reading_accounts_for_every_cpu() -> None:
    # WHEN a block spins one CPU for ~1 s
    with machine_cores() as cores:
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            pass
    # THEN the states add up to the machine's CPUs (nothing dropped, nothing counted twice), and the
    # spinning CPU shows as busy or stolen, never idle
    cpus = os.cpu_count() or 1
    assert set(cores) == {"busy", "idle", "steal"}
    assert sum(cores.values()) == pytest.approx(cpus, rel=0.15)
    assert cores["busy"] + cores["steal"] >= 0.8
