"""Shared benchmark plumbing: figures, timing, percentiles, peak RSS and the JSON summary."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
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


def write_results(figures: list[Figure], meta: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(
        orjson.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, option=orjson.OPT_INDENT_2)
    )
