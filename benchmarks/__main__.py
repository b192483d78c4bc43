"""Run every `benchmarks/bench_*.py` (each exposes `run(scale: float) -> list[Figure]`)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
import time

from benchmarks.harness import Figure, machine_cores, write_results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--scale", type=float, default=0.1, help="1.0 = the 10M-event reference data set")
    parser.add_argument("--only", default="", help="comma-separated benchmark module names (e.g. ingestion)")
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    figures: list[Figure] = []
    machine: dict[str, dict[str, float]] = {}
    import benchmarks

    for module in sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")):
        short = module.removeprefix("bench_")
        if wanted and short not in wanted:
            continue
        print(f"== {short} (scale {args.scale})", flush=True)
        started = time.perf_counter()
        with machine_cores() as cores:
            found = importlib.import_module(f"benchmarks.{module}").run(args.scale)
        for figure in found:
            print(figure.line(), flush=True)
        machine[short] = cores
        # A shared host's steal slows every figure of the run: a figure is read with what the machine gave it.
        given = ", ".join(f"{state} {value:.2f}" for state, value in cores.items())
        print(
            f"   ({time.perf_counter() - started:.1f} s; the machine's {os.cpu_count()} CPUs on average: {given})",
            flush=True,
        )
        figures.extend(found)
    meta = {
        "scale": args.scale,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "machine_cores_by_module": machine,
    }
    write_results(figures, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
