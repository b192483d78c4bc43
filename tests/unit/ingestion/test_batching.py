"""Group commit: concurrent submits share a flush bounded by rows, bytes and time; outcomes per item."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from segops.ingestion.batching import FlushBounds, GroupCommit


class Recorder:
    def __init__(self, refuse: frozenset[str] = frozenset(), fail: bool = False) -> None:
        self.flushes: list[list[str]] = []
        self.refuse = refuse
        self.fail = fail

    def __call__(self, items: Sequence[str]) -> list[BaseException | None]:
        self.flushes.append(list(items))
        if self.fail:
            raise ConnectionError("flush failed")
        return [ValueError(item) if item in self.refuse else None for item in items]


def _submit_all(commit: GroupCommit[str], items: list[str], rows: int = 1, size: int = 1) -> dict[str, BaseException]:
    """Submit each item from its own thread, all at once; returns what each raised."""
    raised: dict[str, BaseException] = {}
    start = threading.Barrier(len(items))

    def submit(item: str) -> None:
        start.wait()
        try:
            commit.submit(item, rows, size)
        except BaseException as exc:
            raised[item] = exc

    threads = [threading.Thread(target=submit, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return raised


def test_concurrent_submits_within_the_window_share_one_flush() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder, FlushBounds(max_rows=1000, max_bytes=10**9, max_wait_seconds=0.5))
    assert _submit_all(commit, [f"m{i}" for i in range(20)]) == {}
    assert len(recorder.flushes) == 1 and sorted(recorder.flushes[0]) == sorted(f"m{i}" for i in range(20))


@pytest.mark.parametrize(("rows", "size"), [(5, 1), (1, 5)], ids=["rows", "bytes"])
def test_a_full_group_flushes_without_waiting_for_the_window(rows: int, size: int) -> None:
    # GIVEN a 10 s window and groups bounded at 10 rows and 10 bytes
    recorder = Recorder()
    commit = GroupCommit(recorder, FlushBounds(max_rows=10, max_bytes=10, max_wait_seconds=10))
    started = time.monotonic()
    # WHEN 4 deliveries of 5 rows (or 5 bytes) arrive together
    assert _submit_all(commit, ["a", "b", "c", "d"], rows=rows, size=size) == {}
    # THEN they went out as two full flushes of two, long before the window
    assert time.monotonic() - started < 5
    assert sorted(len(flush) for flush in recorder.flushes) == [2, 2]


def test_a_lone_delivery_waits_at_most_the_window() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder, FlushBounds(max_rows=1000, max_bytes=10**9, max_wait_seconds=0.2))
    started = time.monotonic()
    commit.submit("alone", 1, 1)
    assert 0.2 <= time.monotonic() - started < 2
    assert recorder.flushes == [["alone"]]


def test_each_delivery_gets_its_own_outcome() -> None:
    recorder = Recorder(refuse=frozenset({"b"}))
    commit = GroupCommit(recorder, FlushBounds(max_rows=1000, max_bytes=10**9, max_wait_seconds=0.5))
    raised = _submit_all(commit, ["a", "b", "c"])
    assert list(raised) == ["b"] and isinstance(raised["b"], ValueError)
    assert len(recorder.flushes) == 1


def test_a_failed_flush_fails_every_delivery_of_it_and_the_next_group_starts_clean() -> None:
    recorder = Recorder(fail=True)
    commit = GroupCommit(recorder, FlushBounds(max_rows=1000, max_bytes=10**9, max_wait_seconds=0.3))
    raised = _submit_all(commit, ["a", "b", "c"])
    assert sorted(raised) == ["a", "b", "c"] and all(isinstance(e, ConnectionError) for e in raised.values())
    recorder.fail = False
    commit.submit("d", 1, 1)
    assert recorder.flushes[-1] == ["d"]


class SlowRecorder(Recorder):
    """Flushes that wait for `gate` (then `seconds`), noting when one starts and how many ran at once."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__()
        self.seconds = seconds
        self.gate = threading.Event()
        self.started = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[str]) -> list[BaseException | None]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.started.set()
        self.gate.wait(10)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return super().__call__(items)


def test_one_flush_at_a_time_and_the_next_group_grows_while_it_runs() -> None:
    # GIVEN a 0.02 s window and a first flush that is running (held until released)
    recorder = SlowRecorder()
    commit = GroupCommit(recorder, FlushBounds(max_rows=1000, max_bytes=10**9, max_wait_seconds=0.02))
    first = threading.Thread(target=commit.submit, args=("first", 1, 1))
    first.start()
    assert recorder.started.wait(10)
    # WHEN five deliveries arrive one by one, each well after the window of the one before
    later = []
    for i in range(5):
        thread = threading.Thread(target=commit.submit, args=(f"m{i}", 1, 1))
        thread.start()
        later.append(thread)
        time.sleep(0.06)
    recorder.gate.set()
    for thread in [first, *later]:
        thread.join(timeout=10)
    # THEN no two flushes ran at once, and the five went out together once the first was done
    assert recorder.most_at_once == 1
    assert [sorted(flush) for flush in recorder.flushes] == [["first"], [f"m{i}" for i in range(5)]]


def test_a_full_group_runs_beside_one_running_flush_and_a_third_waits() -> None:
    # GIVEN groups of two rows and flushes that take 0.2 s
    recorder = SlowRecorder(0.2)
    recorder.gate.set()
    commit = GroupCommit(recorder, FlushBounds(max_rows=2, max_bytes=10**9, max_wait_seconds=10))
    # WHEN eight deliveries arrive at once (four full groups)
    raised = _submit_all(commit, [f"m{i}" for i in range(8)])
    # THEN every group flushed whole, two at most at once
    assert raised == {} and recorder.most_at_once == 2
    assert sorted(len(flush) for flush in recorder.flushes) == [2, 2, 2, 2]
