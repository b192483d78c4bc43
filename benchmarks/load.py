"""`make load` / `make soak`: mixed HTTP traffic against a SegOps stack on this machine (loopback only).

Load (default): finds the highest request rate the stack holds with p99 < 500 ms by stepping the rate
up (each step `--step-seconds`, x`--step-factor`) and then narrowing the gap between the last step
that held and the first that did not (`--refine-steps`), then runs `--seconds` (60) of mixed traffic
at that rate: 70% ingestion (half `track/batch/` with `--batch-size` events, half `track/`), 25%
membership lookups, 5% management calls (segment list, ingestion stats). A step that failed leaves a
backlog (queued deliveries, writer flushes): the stack is drained (every accepted event stored)
before the next step and before the main phase, so no phase measures the previous one's overload. If
the main phase misses the target, it runs once more at the next lower rate that held (`--attempts`).
Reports throughput, p50/p99 per endpoint and per 10 s of the phase, errors, and the reconciliation
sent == stored (every event of the run carries one run-unique event type, counted through
`GET /api/ingestion/stats/` until it matches or `--settle-seconds` passed).

Fixed rate (`--rate`): a warm-up at that rate (`--warmup-seconds`; default a tenth of the run, at
most 60 s: a fresh stack's membership cache is empty, so its first seconds read the warehouse for
nearly every lookup), then `--seconds` at the rate.

Soak (`--soak`): `--seconds` (600) at a fixed rate (`--rate`, default 50 requests/s), reporting the
server's RSS and open file descriptors after the warm-up and at the end, each the median of nine
readings over 2 s (and the highest descriptor count), flat within 10%.

Bounded and self-stopping: at most `--max-requests` requests in all and a fixed schedule; without
`--url` it starts `python -m segops.devserver` on a fresh data directory (port `--port`) and stops it
at the end; with `--url` (loopback only) it drives that stack with the given credentials.
Latency is measured from each request's scheduled send time (open loop), so a stalled server shows
as latency, not as a lower offered rate.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median_low
from typing import Any
from urllib.parse import urlencode, urlsplit

from benchmarks.harness import percentile

P99_TARGET_MS = 500.0
WINDOW_SECONDS = 10  # the phase's p99 is also reported per window of this many seconds
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ENDPOINTS = ("track_batch", "track", "membership", "management")


@dataclass(frozen=True)
class Target:
    base: str
    api_key: str
    email: str
    password: str
    pid: int | None  # the server process, for RSS and file descriptors (soak)


@dataclass
class Tally:
    """What one phase did: latencies per endpoint, errors by status, events accepted."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    by_window: dict[int, list[float]] = field(default_factory=dict)  # latencies by WINDOW_SECONDS of schedule
    errors: dict[str, int] = field(default_factory=dict)
    events_sent: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, status: int, events: int, window: int = 0) -> None:
        with self.lock:
            self.requests += 1
            self.latencies[endpoint].append(seconds * 1000)
            self.by_window.setdefault(window, []).append(seconds * 1000)
            if status >= 400 or status == 0:
                label = f"{endpoint} {status or 'connection error'}"
                self.errors[label] = self.errors.get(label, 0) + 1
            else:
                self.events_sent += events

    def p99_ms(self) -> float:
        return percentile([v for values in self.latencies.values() for v in values], 99)

    def error_count(self) -> int:
        return sum(self.errors.values())


class Client:
    """One keep-alive connection per worker thread."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.local.connection = connection
        return connection

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        if payload is not None:
            headers = {**headers, "Content-Type": "application/json"}
        try:
            connection = self._connection()
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.local.connection = None
            return 0, None
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, None


class Traffic:
    """The request mix of one run."""

    def __init__(self, target: Target, client: Client, batch_size: int) -> None:
        self.client = client
        self.batch_size = batch_size
        self.event_type = f"load_{uuid.uuid4().hex[:10]}"
        self.key = {"Authorization": f"ApiKey {target.api_key}"}
        status, body = client.call("POST", "/api/auth/token/", {}, {"email": target.email, "password": target.password})
        if status != 200:
            raise SystemExit(f"load: could not sign in as {target.email} ({status}): {body}")
        self.bearer = {"Authorization": f"Bearer {body['access']}"}
        self.users = [f"load-user-{i}" for i in range(2000)]
        self.counter = itertools.count()

    def _event(self) -> dict[str, Any]:
        n = next(self.counter)
        return {
            "user_id": random.choice(self.users),
            "event_type": self.event_type,
            "message_id": f"{self.event_type}-{n}",
            "payload": {"path": "/pricing", "n": n},
        }

    def pick(self) -> tuple[str, Callable[[], tuple[int, int]]]:
        """(endpoint, a call returning (status, events accepted)) drawn from the 70/25/5 mix."""
        draw = random.random()
        if draw < 0.35:
            return "track_batch", self._batch
        if draw < 0.70:
            return "track", self._track
        if draw < 0.95:
            return "membership", self._membership
        return "management", self._management

    def _batch(self) -> tuple[int, int]:
        events = [self._event() for _ in range(self.batch_size)]
        status, body = self.client.call("POST", "/api/ingestion/track/batch/", self.key, {"events": events})
        return status, int(body["queued"]) if status == 202 and isinstance(body, dict) else 0

    def _track(self) -> tuple[int, int]:
        status, _ = self.client.call("POST", "/api/ingestion/track/", self.key, self._event())
        return status, 1 if status == 202 else 0

    def _membership(self) -> tuple[int, int]:
        query = urlencode({"user_id": random.choice(self.users)})
        status, _ = self.client.call("GET", f"/api/segments/membership/?{query}", self.key)
        return status, 0

    def _management(self) -> tuple[int, int]:
        path = random.choice(("/api/segments/?limit=20", "/api/ingestion/stats/?window=24h"))
        status, _ = self.client.call("GET", path, self.bearer)
        return status, 0

    def stored(self) -> int:
        status, body = self.client.call("GET", "/api/ingestion/stats/?window=24h", self.key)
        if status != 200:
            return -1
        return sum(int(t["count"]) for t in body["event_types"] if t["event_type"] == self.event_type)


def run_phase(traffic: Traffic, rate: float, seconds: float, budget: list[int], workers: int) -> Tally:
    """Offer `rate` requests/s for `seconds` (open loop), within the shared request `budget`."""
    tally = Tally()
    interval = 1.0 / rate
    total = min(int(rate * seconds), budget[0])
    budget[0] -= total
    started = time.perf_counter()

    def send(scheduled: float) -> None:
        endpoint, call = traffic.pick()
        status, events = call()
        window = int((scheduled - started) // WINDOW_SECONDS)
        tally.record(endpoint, time.perf_counter() - scheduled, status, events, window)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(total):
            scheduled = started + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, scheduled)
    return tally


def held(tally: Tally) -> bool:
    """p99 under the target with at most 1% errors."""
    return tally.p99_ms() < P99_TARGET_MS and tally.error_count() <= 0.01 * max(1, tally.requests)


class Run:
    """The events a run's phases have had accepted (all must be stored), and the drain between phases."""

    def __init__(self, traffic: Traffic, args: argparse.Namespace) -> None:
        self.traffic = traffic
        self.args = args
        self.budget = [args.max_requests]
        self.sent = 0

    def phase(self, rate: float, seconds: float) -> Tally:
        tally = run_phase(self.traffic, rate, seconds, self.budget, self.args.workers)
        self.sent += tally.events_sent
        return tally

    def drain(self) -> float:
        """Seconds until every event accepted so far was stored (at most `--settle-seconds`)."""
        started = time.monotonic()
        settle(self.traffic, self.sent, self.args.settle_seconds)
        return round(time.monotonic() - started, 1)


def find_rates(run: Run) -> tuple[list[float], list[dict[str, Any]]]:
    """The rates whose step held, highest first, and the steps: stepped up by `--step-factor` until a
    step fails, then `--refine-steps` steps at the geometric mean of the highest rate that held and the
    lowest that failed. The stack is drained after a failed step, before anything else runs."""
    args = run.args
    steps: list[dict[str, Any]] = []
    held_rates: list[float] = []
    failed: float | None = None

    def step(rate: float) -> bool:
        tally = run.phase(rate, args.step_seconds)
        ok = held(tally)
        p99 = tally.p99_ms()
        entry: dict[str, Any] = {"rate": round(rate, 1), "p99_ms": round(p99, 1), "errors": tally.error_count()}
        entry["held"] = ok
        if not ok:
            entry["drained_s"] = run.drain()
        steps.append(entry)
        print(f"  step {rate:7.1f} req/s: p99 {p99:7.1f} ms, errors {tally.error_count()}", flush=True)
        return ok

    rate = float(args.start_rate)
    while rate <= args.max_rate and run.budget[0] > 0:
        if not step(rate):
            failed = rate
            break
        held_rates.append(rate)
        rate *= args.step_factor
    if not held_rates:
        raise SystemExit(f"load: not even {args.start_rate} req/s held p99 < {P99_TARGET_MS:.0f} ms: {steps}")
    for _ in range(args.refine_steps):
        if failed is None or run.budget[0] <= 0:
            break
        rate = (held_rates[-1] * failed) ** 0.5
        if step(rate):
            held_rates.append(rate)
        else:
            failed = rate
    return sorted(held_rates, reverse=True), steps


def settle(traffic: Traffic, sent: int, seconds: float) -> int:
    """Stored events of the run once they match `sent` (or the last count after `seconds`)."""
    deadline = time.monotonic() + seconds
    stored = traffic.stored()
    while stored != sent and time.monotonic() < deadline:
        time.sleep(1)
        stored = traffic.stored()
    return stored


class ServerGone(RuntimeError):
    """The measured server process is no longer running."""


def process_usage(pid: int | None) -> dict[str, int] | None:
    """RSS (KiB) and open file descriptors of the server process (Linux /proc): the median of nine
    readings 0.25 s apart, and the highest descriptor count. One reading alone also counts the files
    of whatever insert, merge or connection is in flight at that instant (tens of descriptors on the
    dev stack's base of ~80)."""
    if pid is None:
        return None
    rss: list[int] = []
    fds: list[int] = []
    for reading in range(9):
        if reading:
            time.sleep(0.25)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds.append(len(os.listdir(f"/proc/{pid}/fd")))
        except FileNotFoundError:
            status = ""
        vm_rss = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")]
        if not vm_rss:  # gone, or a zombie (no memory left to report)
            raise ServerGone(f"the server process {pid} has exited; its soak figures cannot be read")
        rss.append(vm_rss[0])
    return {"rss_kib": median_low(rss), "open_fds": median_low(fds), "open_fds_max": max(fds)}


def summary(tally: Tally, seconds: float) -> dict[str, Any]:
    windows = [round(percentile(tally.by_window[w], 99), 1) for w in sorted(tally.by_window)]
    endpoints = {
        name: {
            "requests": len(values),
            "p50_ms": round(percentile(values, 50), 1),
            "p99_ms": round(percentile(values, 99), 1),
        }
        for name, values in tally.latencies.items()
        if values
    }
    return {
        "requests": tally.requests,
        "throughput_rps": round(tally.requests / seconds, 1),
        "events_per_second": round(tally.events_sent / seconds, 1),
        "p99_ms": round(tally.p99_ms(), 1),
        f"p99_by_{WINDOW_SECONDS}s_ms": windows,
        "endpoints": endpoints,
        "errors": dict(sorted(tally.errors.items())),
    }


def _loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise SystemExit(f"load: only http://127.0.0.1 (loopback) targets are allowed, not {url}")
    return f"http://{parts.netloc}"


THREAD_NAMES = Path(__file__).resolve().parent / "threadnames"


def _stat_cpu_seconds(stat: str) -> float:
    """utime + stime of a `/proc/.../stat` line, in seconds (the fields after the parenthesised name)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process, its ended threads included (Linux /proc)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_seconds(pid: int) -> Counter[str]:
    """CPU seconds (user + system) of each kind of live thread of a process (Linux /proc): by thread
    name, its trailing number dropped (`waitress-3` and `waitress-11` are `waitress`)."""
    seconds: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        name = re.sub(r"[-_ ]?\d+$", "", stat[stat.index("(") + 1 : stat.rindex(")")]) or "thread"
        seconds[name] += _stat_cpu_seconds(stat)  # type: ignore[assignment]  # a Counter of float seconds
    return seconds


@contextmanager
def dev_stack(port: int, name_threads: bool = False) -> Iterator[Target]:
    """`python -m segops.devserver` on a fresh data directory; stopped (SIGTERM, then killed) at exit.
    `name_threads`: its Python threads name their OS threads (benchmarks/threadnames), for
    `thread_cpu_seconds`."""
    with tempfile.TemporaryDirectory(prefix="segops-load-") as data_dir:
        env = {
            **os.environ,
            "SEGOPS_DATA_DIR": data_dir,
            "SEGOPS_PORT": str(port),
            "SEGOPS_HOST": "127.0.0.1",
            "SEGOPS_LOG_LEVEL": "WARNING",
            # The plan's limits still run on every request, but far above what the tool can send: it
            # measures the stack, not the default plan's rate limit (a --url stack keeps its own plan).
            "SEGOPS_PLAN_API_CALLS_PER_MINUTE": "100000000",
            "SEGOPS_PLAN_API_CALLS_PER_MINUTE_PER_KEY": "100000000",
            "SEGOPS_PLAN_EVENTS_PER_MONTH": "100000000000",
        }
        if name_threads:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(THREAD_NAMES), os.environ.get("PYTHONPATH")]))
        log_path = Path(data_dir) / "server.log"
        with log_path.open("wb") as server_log:
            server = subprocess.Popen(
                [sys.executable, "-m", "segops.devserver"], env=env, stdout=server_log, stderr=subprocess.STDOUT
            )
            try:
                credentials = Path(data_dir) / "dev-credentials.json"
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 120
                while not _healthy(base, credentials):
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"load: the dev stack did not start:\n{log_path.read_text()[-2000:]}")
                    time.sleep(0.5)
                saved = json.loads(credentials.read_text())
                yield Target(base, saved["api_key"], saved["email"], saved["password"], server.pid)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


def _healthy(base: str, credentials: Path) -> bool:
    if not credentials.exists():
        return False
    status, _ = Client(base).call("GET", "/api/ingestion/health/", {})
    return status == 200


def main_phase(run: Run, rates: list[float]) -> tuple[float, Tally, float, list[dict[str, Any]]]:
    """`--seconds` at the first rate; while a phase misses the target, the stack is drained and the
    phase runs again at the next rate. The last phase's rate, tally and seconds, and every attempt."""
    attempts: list[dict[str, Any]] = []
    for rate in rates:
        if attempts:
            print(f"  p99 {attempts[-1]['p99_ms']} ms missed the target: once more at {rate:.1f} req/s", flush=True)
            attempts[-1]["drained_s"] = run.drain()
        print(f"main phase: {rate:.1f} req/s for {run.args.seconds:.0f} s", flush=True)
        started = time.perf_counter()
        tally = run.phase(rate, run.args.seconds)
        elapsed = time.perf_counter() - started
        attempts.append({"rate": round(rate, 1), "p99_ms": round(tally.p99_ms(), 1), "errors": tally.error_count()})
        if held(tally):
            break
    return rate, tally, elapsed, attempts


def run(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    traffic = Traffic(target, Client(target.base), args.batch_size)
    run = Run(traffic, args)
    report: dict[str, Any] = {"mode": "soak" if args.soak else "load", "target": target.base}
    if args.rate or args.soak:
        rates = [float(args.rate or 50)]
        warmup = min(60.0, args.seconds / 10) if args.warmup_seconds is None else args.warmup_seconds
        if warmup > 0:
            run.phase(rates[0], warmup)
        before = process_usage(target.pid) if args.soak else None
    else:
        print(f"stepping the rate up from {args.start_rate} req/s (x{args.step_factor}, {args.step_seconds} s each)")
        rates, report["steps"] = find_rates(run)
        report["drained_s"] = run.drain()
    rate, tally, elapsed, attempts = main_phase(run, rates[: 1 if args.soak else max(1, args.attempts)])
    if len(attempts) > 1:
        report["attempts"] = attempts
    if args.soak:
        after = process_usage(target.pid)
        report["server_start"], report["server_end"] = before, after
        if before and after:
            report["flat_within_10pct"] = all(after[k] <= before[k] * 1.10 for k in ("rss_kib", "open_fds"))
    report["rate"] = round(rate, 1)
    report["seconds"] = round(elapsed, 1)
    report.update(summary(tally, elapsed))
    report["p99_under_500ms"] = tally.p99_ms() < P99_TARGET_MS
    stored = settle(traffic, run.sent, args.settle_seconds)
    report["reconciliation"] = {"sent": run.sent, "stored": stored, "ok": run.sent == stored}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running stack (loopback only); default: start the dev stack")
    parser.add_argument("--api-key", default=os.environ.get("SEGOPS_LOAD_API_KEY", ""))
    parser.add_argument("--email", default=os.environ.get("SEGOPS_LOAD_EMAIL", ""))
    parser.add_argument("--password", default=os.environ.get("SEGOPS_LOAD_PASSWORD", ""))
    parser.add_argument("--pid", type=int, help="the server's process id with --url (RSS and fds in soak)")
    parser.add_argument("--port", type=int, default=18250, help="port of the dev stack started without --url")
    parser.add_argument("--soak", action="store_true", help="fixed rate for --seconds (600), RSS and fds")
    parser.add_argument("--seconds", type=float, help="main phase length (load 60, soak 600)")
    parser.add_argument("--rate", type=float, help="fixed rate (req/s) instead of stepping")
    parser.add_argument("--start-rate", type=float, default=20.0)
    parser.add_argument("--step-factor", type=float, default=1.5)
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--refine-steps", type=int, default=2, help="steps between the last held and first failed")
    parser.add_argument("--attempts", type=int, default=2, help="main phases at most (next lower held rate)")
    parser.add_argument("--warmup-seconds", type=float, help="with --rate/--soak (default: a tenth, <= 60 s)")
    parser.add_argument("--max-rate", type=float, default=5000.0)
    parser.add_argument("--max-requests", type=int, default=500_000, help="hard cap on requests in all")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--workers", type=int, default=64, help="concurrent requests in flight at most")
    parser.add_argument("--settle-seconds", type=float, default=120.0, help="wait for stored == sent")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 600.0 if args.soak else 60.0

    @contextmanager
    def given() -> Iterator[Target]:
        if args.url is None:
            with dev_stack(args.port) as started:
                yield started
            return
        if not (args.api_key and args.email and args.password):
            raise SystemExit("load: --url needs --api-key, --email and --password (or SEGOPS_LOAD_*)")
        yield Target(_loopback(args.url), args.api_key, args.email, args.password, args.pid)

    with given() as target:
        report = run(target, args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = report["reconciliation"]["ok"] and (report.get("flat_within_10pct", True) is not False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
