"""The embedded backend's threads and sessions: chDB keeps three `/proc/<pid>/task/<tid>/` files open for every
thread that has run a statement while that thread lives, so the process's open descriptors stay flat
only if statements run on a bounded set of long-lived threads (`make soak`, docs/operations.md)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path

from segops.warehouse import chdb_backend
from segops.warehouse.chdb_backend import ChdbWarehouse


def thread_files() -> int:
    """This process's open descriptors on per-thread /proc files (chDB's statistics of each thread)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
            found += "/task/" in os.readlink(f"/proc/self/fd/{fd}")
    return found


def test_callers_threads_hold_no_descriptors_after_their_statements(chdb_path: Path) -> None:
    # GIVEN the embedded warehouse, warmed up by concurrent statements (every session and the engine's
    # threads for statements side by side have run; the threads that ran them are gone)
    warehouse = ChdbWarehouse(chdb_path, f"t_{uuid.uuid4().hex[:12]}")
    warmers = [threading.Thread(target=warehouse.query, args=("SELECT count() FROM numbers(1000)",)) for _ in range(32)]
    for thread in warmers:
        thread.start()
    for thread in warmers:
        thread.join()
    before = thread_files()
    # WHEN 32 threads that stay alive (HTTP connection threads, bus workers) each run statements
    ran = threading.Barrier(33)
    release = threading.Event()

    def caller() -> None:
        warehouse.query("SELECT count() FROM numbers(1000)")
        ran.wait()
        release.wait()

    callers = [threading.Thread(target=caller) for _ in range(32)]
    for thread in callers:
        thread.start()
    ran.wait()
    during = thread_files()
    release.set()
    for thread in callers:
        thread.join()
    # THEN they hold none of chDB's per-thread files (32 x 3 = 96 if each thread ran its own)
    assert during - before < 12, (before, during)


def test_removing_many_merged_parts_leaves_no_idle_engine_threads_behind(chdb_path: Path) -> None:
    # GIVEN a table of 150 parts (one insert each), cleaned up every second
    warehouse = ChdbWarehouse(chdb_path, f"t_{uuid.uuid4().hex[:12]}")
    warehouse.command(
        "CREATE TABLE parts (x UInt32) ENGINE = MergeTree ORDER BY x "
        "SETTINGS cleanup_delay_period = 1, max_cleanup_delay_period = 1, cleanup_delay_period_random_add = 0"
    )
    engine_threads = "SELECT value FROM system.metrics WHERE metric = 'GlobalThread'"
    before = warehouse.query(engine_threads).scalar()
    for x in range(150):
        warehouse.insert("parts", ["x"], [(x,)])
    # WHEN they are merged into one and the 150 outdated parts are removed
    warehouse.command("OPTIMIZE TABLE parts FINAL")
    outdated = "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'parts' AND NOT active"
    deadline = time.monotonic() + 10
    while warehouse.query(outdated).scalar() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert warehouse.query(outdated).scalar() == 0
    # THEN the engine did not grow its thread pool for it: removing them at once takes up to 128 threads
    # that then stay idle for good, each to hold three open files once it runs a statement's work
    assert warehouse.query(engine_threads).scalar() - before < 16
    assert warehouse.query("SELECT count() FROM parts").scalar() == 150


def test_a_long_statement_does_not_hold_up_the_short_ones(chdb_path: Path) -> None:
    # GIVEN long statements (a compute, an export) running on all but one of the engine's sessions
    warehouse = ChdbWarehouse(chdb_path, f"t_{uuid.uuid4().hex[:12]}")
    finished: list[str] = []

    def long_statement() -> None:
        warehouse.query("SELECT sleep(2)")
        finished.append("long")

    assert chdb_backend.SESSIONS >= 2
    running = [threading.Thread(target=long_statement) for _ in range(chdb_backend.SESSIONS - 1)]
    for thread in running:
        thread.start()
    time.sleep(0.3)
    # WHEN short statements arrive meanwhile
    for _ in range(5):
        assert warehouse.query("SELECT 1").scalar() == 1
    finished.append("short")
    for thread in running:
        thread.join()
    # THEN they ran on the free session, not after the long ones
    assert finished == ["short"] + ["long"] * (chdb_backend.SESSIONS - 1)


def test_each_warehouse_reads_its_own_database_whichever_session_runs_it(chdb_path: Path) -> None:
    # GIVEN two warehouses on different databases of the one engine, each with its own table `t`
    warehouses = [ChdbWarehouse(chdb_path, f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    for value, warehouse in enumerate(warehouses):
        warehouse.command("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x")
        warehouse.insert("t", ["x"], [(value,)])
    # WHEN 8 threads read them in turns (`USE` is state of whichever session runs the statement)
    wrong: list[tuple[int, int]] = []

    def reader(start: int) -> None:
        for i in range(start, start + 40):
            answer = warehouses[i % 2].query("SELECT x FROM t").scalar()
            if answer != i % 2:
                wrong.append((i % 2, answer))

    readers = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    # THEN every answer came from the warehouse's own database
    assert wrong == []
