"""The per-process usage buffer against the real warehouse: retried flushes and re-recorded units
count once, a flush the warehouse refused is written later, and a stopping stack writes its counts
before its warehouse closes, leaving nothing behind that flushes later."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from segops import clock
from segops.config import Settings
from segops.localstack import LocalStack
from segops.metering import meter as metering
from segops.metering.meter import Meter, meter_for
from segops.metering.usage import totals, usage_rows
from segops.warehouse.base import Warehouse

from tests.support.ingestion import FlakyWarehouse

AT = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
DAY = (datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))


class AnswerLost:
    """The real warehouse, except that the first insert into `usage` lands and then fails (the
    connection dropped before the answer arrived)."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.database = inner.database
        self.lost = False

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        self.inner.insert(table, columns, rows, settings)
        if table == "usage" and not self.lost:
            self.lost = True
            raise ConnectionError("connection reset after the insert")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def day_totals(stack: LocalStack, tenant_id: int) -> dict[str, int]:
    return dict(totals(usage_rows(stack.runtime, tenant_id, *DAY, "day")))


def test_a_flush_that_landed_but_lost_its_answer_counts_once(stack: LocalStack) -> None:
    # GIVEN counts whose flush reaches ClickHouse but whose answer is lost
    meter = Meter(AnswerLost(stack.runtime.warehouse))  # type: ignore[arg-type]
    with clock.frozen(AT):
        meter.count(7, "api_calls", 3, "api:2xx")
        meter.count(7, "events_accepted", 500, "api")
        assert meter.flush() is False
        # WHEN more is counted and the next flush retries the first batch
        meter.count(7, "api_calls", 1, "api:2xx")
        assert meter.flush() is True
    # THEN the retried batch was dropped as a duplicate and the new counts added
    found = day_totals(stack, 7)
    assert (found["api_calls"], found["events_accepted"]) == (4, 500)


def test_a_refused_flush_is_kept_and_written_next_time(stack: LocalStack) -> None:
    flaky = FlakyWarehouse(stack.runtime.warehouse, "usage", fail_on={1, 2})
    meter = Meter(flaky)  # type: ignore[arg-type]
    with clock.frozen(AT):
        meter.count(8, "sandbox_calls", 2)
        assert meter.flush() is False and meter.flush() is False
        assert day_totals(stack, 8)["sandbox_calls"] == 0
        assert meter.flush() is True
    assert day_totals(stack, 8)["sandbox_calls"] == 2
    # AND nothing is left to write
    assert meter.flush() is True and flaky.calls == 3


def test_a_unit_recorded_again_by_another_process_counts_once(stack: LocalStack) -> None:
    # GIVEN one export recorded by two instances (a redelivered message ran it again) and another export
    first, second = Meter(stack.runtime.warehouse), Meter(stack.runtime.warehouse)
    with clock.frozen(AT):
        first.unit(9, "export:1", {"exports": 1, "export_rows": 10, "export_bytes": 100}, "csv")
        second.unit(9, "export:1", {"exports": 1, "export_rows": 10, "export_bytes": 100}, "csv")
        second.unit(9, "export:2", {"exports": 1, "export_rows": 5, "export_bytes": 50}, "csv")
        # AND a connector change re-run that found nothing left to push (it must not erase the push)
        first.unit(9, "sync:3:c1", {"connector_syncs": 1, "connector_users_pushed": 40}, "klaviyo")
        second.unit(9, "sync:3:c1", {"connector_syncs": 1, "connector_users_pushed": 0}, "klaviyo")
        assert first.flush() and second.flush()
    # THEN each unit counts once, with its largest recording
    found = day_totals(stack, 9)
    assert (found["exports"], found["export_rows"], found["export_bytes"]) == (2, 15, 150)
    assert (found["connector_syncs"], found["connector_users_pushed"]) == (1, 40)


def test_nothing_is_counted_when_metering_is_off(stack: LocalStack) -> None:
    meter = Meter(stack.runtime.warehouse, enabled=False)
    with clock.frozen(AT):
        meter.count(10, "api_calls")
        meter.unit(10, "export:1", {"exports": 1})
        assert meter.flush()
    assert not any(day_totals(stack, 10).values())


def test_a_clean_shutdown_writes_the_counts_then_nothing_flushes_any_more(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a stack whose meter flushes every 20 ms, with counts not yet flushed
    before = set(threading.enumerate())
    stack = LocalStack(settings.model_copy(update={"metering_flush_seconds": 0.02}))
    caplog.set_level(logging.DEBUG, logger="segops.metering")
    with clock.frozen(AT):
        meter_for(stack.runtime).count(11, "api_calls", 5, "api:2xx")
        # WHEN it stops (bus, then the meter, then the warehouse), and time passes
        stack.stop()
    flushers = [t for t in set(threading.enumerate()) - before if t.name == "segops-metering"]
    time.sleep(0.2)
    warehouse = stack.runtime.warehouse  # chDB's shared session: still readable after the close
    del stack
    gc.collect()
    # THEN the counts were written, its flusher is gone, and nothing was logged: no flush ran late
    assert flushers == []
    rows = warehouse.query("SELECT sum(value) FROM usage WHERE tenant_id = 11 AND metric = 'api_calls'").scalar()
    assert rows == 5
    assert [r.getMessage() for r in caplog.records if r.name == "segops.metering"] == []


def test_units_counted_after_close_are_dropped_and_said_once(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a closed meter (its process is stopping)
    meter = Meter(stack.runtime.warehouse)
    meter.close()
    # WHEN units still arrive (a shutdown-order bug)
    with clock.frozen(AT), caplog.at_level(logging.WARNING, logger="segops.metering"):
        meter.count(12, "api_calls", 2)
        meter.unit(12, "export:1", {"exports": 1})
        assert meter.flush()
    # THEN nothing is written, and one warning says so
    assert not any(day_totals(stack, 12).values())
    assert [r.getMessage() for r in caplog.records] == ["usage counted after the meter closed: dropped"]


def test_a_runtime_finalized_while_meter_for_holds_its_lock_neither_hangs_nor_leaves_its_meter_open(
    settings: Settings,
) -> None:
    # GIVEN a stack with a meter (its runtime's finalizer registered)
    stack = LocalStack(settings)
    meter = meter_for(stack.runtime)
    runtime_id = id(stack.runtime)

    # WHEN the finalizer runs on a thread that holds the meters' lock: what the garbage collector does
    # when an allocation inside `meter_for` collects a dead runtime (a CI run hung there)
    def finalize_inside_the_lock() -> None:
        with metering._meters_lock:
            metering._forget(runtime_id)

    worker = threading.Thread(target=finalize_inside_the_lock, daemon=True)
    worker.start()
    worker.join(timeout=5)
    # THEN it returned, and the forgotten meter is closed by the closing thread soon after
    assert not worker.is_alive()
    deadline = time.monotonic() + 5
    while not meter._closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert meter._closed
    stack.stop()
