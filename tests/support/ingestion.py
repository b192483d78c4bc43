"""Helpers for ingestion tests: read what landed in ClickHouse, redeliver bus messages, inject faults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segops.bus.base import BusMessage
from segops.localstack import LocalStack
from segops.warehouse.base import Warehouse


def stored_events(stack: LocalStack, tenant_id: int) -> list[dict[str, Any]]:
    return stack.runtime.warehouse.query(
        "SELECT event_id, message_id, user_id, event_type, occurred_at, received_at, payload FROM events "
        "WHERE tenant_id = {t:UInt64} ORDER BY user_id, occurred_at, event_id",
        {"t": tenant_id},
    ).dicts()


def error_rows(stack: LocalStack, tenant_id: int) -> list[dict[str, Any]]:
    return stack.runtime.warehouse.query(
        "SELECT error_type, detail, source FROM ingestion_errors WHERE tenant_id = {t:UInt64} ORDER BY ts",
        {"t": tenant_id},
    ).dicts()


def record_topic(stack: LocalStack, topic: str) -> list[BusMessage]:
    """Every message published on `topic` from now on (an extra subscription, as Pub/Sub would allow)."""
    seen: list[BusMessage] = []
    stack.bus.subscribe(topic, f"test-recorder-{topic}", seen.append)
    return seen


def deliver(stack: LocalStack, function: str, message: BusMessage) -> int:
    """Push `message` to `function` through its functions-framework entry point; returns the HTTP status."""
    return stack.push(function, message)


class FlakyWarehouse:
    """The real warehouse, except that chosen inserts into `table` fail (`failure`: a `BaseException`
    subclass stands for the process dying there: no `except Exception` cleanup runs). `fail_on` empty:
    it only counts the inserts."""

    def __init__(
        self, inner: Warehouse, table: str, fail_on: set[int], failure: type[BaseException] = ConnectionError
    ) -> None:
        self.inner = inner
        self.failure = failure
        self.database = inner.database
        self.table = table
        self.fail_on = fail_on
        self.calls = 0

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        if table == self.table:
            self.calls += 1
            if self.calls in self.fail_on or -1 in self.fail_on:
                raise self.failure(f"injected failure on insert #{self.calls}")
        self.inner.insert(table, columns, rows, settings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
