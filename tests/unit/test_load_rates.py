"""`make load`'s search for the highest rate the stack holds (benchmarks/load.py) against a simulated
stack: stepping up, narrowing the gap, draining after a failed step, and the main phase's retry."""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks import load


class SimulatedRun(load.Run):
    """A stack that holds p99 < 500 ms up to `capacity` requests/s in a step, `main_capacity` for the
    main phase's `--seconds`; records what ran, in order."""

    def __init__(self, capacity: float, main_capacity: float, **overrides: Any) -> None:
        options = {
            "start_rate": 20.0,
            "step_factor": 1.5,
            "step_seconds": 10.0,
            "max_rate": 5000.0,
            "refine_steps": 2,
            "seconds": 60.0,
            "max_requests": 500_000,
            "workers": 8,
            "settle_seconds": 1.0,
            **overrides,
        }
        args = argparse.Namespace(**options)
        self.args = args
        self.budget = [args.max_requests]
        self.sent = 0
        self.capacity = capacity
        self.main_capacity = main_capacity
        self.ran: list[tuple[str, float]] = []

    def phase(self, rate: float, seconds: float) -> load.Tally:
        self.ran.append(("phase", round(rate, 1)))
        limit = self.main_capacity if seconds == self.args.seconds else self.capacity
        tally = load.Tally()
        latency = 0.05 if rate <= limit else 2.0
        for _ in range(100):
            tally.record("track", latency, 202, 1)
        self.sent += tally.events_sent
        return tally

    def drain(self) -> float:
        self.ran.append(("drain", 0.0))
        return 0.0


def test_the_rate_steps_up_then_narrows_the_gap_and_drains_after_each_failed_step() -> None:
    # GIVEN a stack that holds up to 90 requests/s
    run = SimulatedRun(capacity=90.0, main_capacity=90.0)
    # WHEN the rate is searched
    rates, steps = load.find_rates(run)
    # THEN it stepped 20 → 67.5 (held), 101.2 (failed), then 82.7 (held) and 91.5 (failed)
    assert [s["rate"] for s in steps] == [20.0, 30.0, 45.0, 67.5, 101.2, 82.7, 91.5]
    assert [s["held"] for s in steps] == [True, True, True, True, False, True, False]
    assert rates[:2] == [(67.5 * 101.25) ** 0.5, 67.5]
    # and the stack was drained right after each failed step, before anything else ran
    kinds = [kind for kind, _ in run.ran]
    assert kinds[5] == "drain" and kinds[-1] == "drain"
    assert kinds.count("drain") == 2
    assert all("drained_s" in s for s in steps if not s["held"])


def test_a_main_phase_that_misses_runs_again_drained_at_the_next_lower_rate() -> None:
    # GIVEN a stack that holds 82.7 requests/s for a 10 s step but only 70 for the 60 s phase
    run = SimulatedRun(capacity=90.0, main_capacity=70.0)
    rates, _ = load.find_rates(run)
    run.ran.clear()
    # WHEN the main phase runs with two attempts
    rate, tally, _, attempts = load.main_phase(run, rates[:2])
    # THEN the first attempt (82.7) missed, the stack was drained, and 67.5 held
    assert [a["rate"] for a in attempts] == [82.7, 67.5]
    assert "drained_s" in attempts[0]
    assert run.ran == [("phase", 82.7), ("drain", 0.0), ("phase", 67.5)]
    assert rate == 67.5 and load.held(tally)


def test_a_main_phase_that_holds_runs_once() -> None:
    run = SimulatedRun(capacity=90.0, main_capacity=90.0)
    rates, _ = load.find_rates(run)
    _, _, _, attempts = load.main_phase(run, rates[:2])
    assert len(attempts) == 1 and attempts[0]["rate"] == 82.7
