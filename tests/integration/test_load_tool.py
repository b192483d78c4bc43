"""`make load` (benchmarks/load.py) against the stack served on loopback: a short fixed-rate run sends
the 70/25/5 mix, reports per-endpoint latencies and reconciles events sent with events stored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from segops.localstack import LocalStack

from benchmarks import load
from tests.support.api import Api


def test_a_short_run_reports_every_endpoint_and_stores_every_event_it_sent(
    stack: LocalStack, served: str, tmp_path: Path
) -> None:
    # GIVEN the stack on loopback, delivering its bus in the background as `make dev` does
    account = Api(stack).signup()
    stack.start_background()
    out = tmp_path / "report.json"
    # WHEN 2 s of traffic run at 40 requests/s
    code = load.main(
        [
            *("--url", served, "--api-key", account.api_key, "--email", account.email),
            *("--password", account.password, "--rate", "40", "--seconds", "2", "--settle-seconds", "60"),
            *("--out", str(out), "--workers", "8"),
        ]
    )
    # THEN every scheduled request was sent, none failed, and every accepted event was stored once
    report = json.loads(out.read_text())
    assert code == 0, report
    assert report["requests"] == 80
    assert report["errors"] == {}
    assert report["reconciliation"]["ok"] and report["reconciliation"]["sent"] > 0
    assert set(report["endpoints"]) <= set(load.ENDPOINTS)
    assert {"track_batch", "track", "membership"} <= set(report["endpoints"])


def test_only_loopback_targets_are_driven() -> None:
    with pytest.raises(SystemExit, match="loopback"):
        load.main(["--url", "http://example.com:8080", "--api-key", "k", "--email", "e", "--password", "p"])


def test_a_short_soak_reports_the_servers_memory_and_descriptors(
    stack: LocalStack, served: str, tmp_path: Path
) -> None:
    # GIVEN the stack served by this very process (so its pid is the server's)
    account = Api(stack).signup()
    stack.start_background()
    out = tmp_path / "soak.json"
    load.main(
        [
            *("--url", served, "--api-key", account.api_key, "--email", account.email, "--soak"),
            *("--password", account.password, "--rate", "20", "--seconds", "2", "--settle-seconds", "60"),
            *("--out", str(out), "--workers", "8", "--pid", str(os.getpid())),
        ]
    )
    # THEN the report has RSS and open descriptors at start and end, their verdict, and the reconciliation
    report = json.loads(out.read_text())
    assert report["mode"] == "soak"
    for sample in (report["server_start"], report["server_end"]):
        assert sample["rss_kib"] > 0 and 0 < sample["open_fds"] <= sample["open_fds_max"]
    assert isinstance(report["flat_within_10pct"], bool)
    assert report["reconciliation"]["ok"], report["reconciliation"]
