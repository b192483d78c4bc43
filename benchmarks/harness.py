"""Shared benchmark plumbing: figures, timing, percentiles, peak RSS, the machine's CPU and the JSON
summary."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).parent / "results" / "latest.json"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        text = f"{self.name}: {self.value:,.3f} {self.unit}"
        if self.ratio is not None:
            text += f" ({self.ratio:.2f}x vs {self.baseline_name})"
        if self.target:
            text += f"  [target {self.target}]"
        return text


def ratio_figure(
    name: str, value: float, unit: str, baseline_name: str, baseline: float, target: str = "", **extra: Any
) -> Figure:
    return Figure(name, value, unit, baseline_name, baseline, value / baseline if baseline else None, target, extra)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time in seconds over `repeat` runs (the least noisy estimate on a shared machine)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The first eight states of /proc/stat's `cpu` line, in its order (proc(5)).
CPU_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_seconds(stat: str | None = None) -> dict[str, float] | None:
    """Seconds all of the machine's CPUs spent in each state since boot, from /proc/stat's `cpu` line
    (`stat`: that file's text; read when None). None where there is no /proc/stat."""
    if stat is None:
        try:
            stat = Path("/proc/stat").read_text()
        except OSError:
            return None
    fields = stat.split("\n", 1)[0].split()
    if fields[:1] != ["cpu"] or len(fields) < 1 + len(CPU_STATES):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return {state: int(value) / tick for state, value in zip(CPU_STATES, fields[1:], strict=False)}


def cores_by_state(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """How many CPUs, on average over `seconds` between two `machine_cpu_seconds` readings, ran work (any
    process's, this run's or not), sat idle, or were stolen: `steal` is the time a virtual CPU had work
    but its host ran another guest, which a shared host takes from a benchmark without any process here
    being charged for it."""
    spent = {state: after[state] - before[state] for state in CPU_STATES}
    busy = spent["user"] + spent["nice"] + spent["system"] + spent["irq"] + spent["softirq"]
    idle = spent["idle"] + spent["iowait"]
    return {
        name: round(value / seconds, 2) for name, value in (("busy", busy), ("idle", idle), ("steal", spent["steal"]))
    }


@contextmanager
def machine_cores() -> Iterator[dict[str, float]]:
    """Yields a dict that, when the block ends, holds `cores_by_state` over the block (left empty where
    there is no /proc/stat): what the machine gave the run, to read its figures by."""
    reading: dict[str, float] = {}
    before, started = machine_cpu_seconds(), time.perf_counter()
    try:
        yield reading
    finally:
        after, elapsed = machine_cpu_seconds(), time.perf_counter() - started
        if before is not None and after is not None and elapsed > 0:
            reading.update(cores_by_state(before, after, elapsed))


def write_results(figures: list[Figure], meta: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(
        orjson.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, option=orjson.OPT_INDENT_2)
    )
