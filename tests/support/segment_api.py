"""Helpers for segment tests: events straight into the warehouse, segments and computes through HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from segops.compute import engine
from segops.localstack import LocalStack

from tests.support.api import Account, Api
from tests.support.fixtures import load_fixture

EVENT_COLUMNS = (
    "tenant_id",
    "event_id",
    "message_id",
    "user_id",
    "event_type",
    "occurred_at",
    "received_at",
    "payload",
)


def event_row(
    tenant_id: int, user_id: str, event_type: str, occurred_at: datetime, payload: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    return (
        tenant_id,
        str(uuid.uuid4()),
        "",
        user_id,
        event_type,
        occurred_at,
        occurred_at,
        orjson.dumps(payload or {}).decode(),
    )


def insert_events(stack: LocalStack, rows: Iterable[Sequence[Any]]) -> None:
    stack.runtime.warehouse.insert("events", EVENT_COLUMNS, list(rows))


def page_views(stack: LocalStack, tenant_id: int, user_ids: Iterable[str], at: datetime | None = None) -> None:
    """One `page_viewed` per user (at `at`, default one hour ago)."""
    when = at or datetime.now(UTC) - timedelta(hours=1)
    insert_events(stack, (event_row(tenant_id, u, "page_viewed", when, {"path": "/pricing"}) for u in user_ids))


VISITED: dict[str, Any] = load_fixture("segments/page-viewers")


def defined_segment(api: Api, account: Account, definition: dict[str, Any], name: str = "Segment") -> int:
    created = api.post(
        "/api/segments/", {"name": name, "tenant": account.tenant_id, "segment_type": "rule"}, headers=account.bearer
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    segment_id = int(created.get_json()["id"])
    patched = api.patch(f"/api/segments/{segment_id}/", {"definition": definition}, headers=account.bearer)
    assert patched.status_code == 200, patched.get_data(as_text=True)
    return segment_id


def compute(api: Api, account: Account, segment_id: int) -> dict[str, Any]:
    """Queue a compute over HTTP, deliver it, and return the finished compute status."""
    queued = api.post(f"/api/segments/{segment_id}/compute/", headers=account.bearer)
    assert queued.status_code == 202, queued.get_data(as_text=True)
    api.stack.bus.drain()
    status = api.get(f"/api/segments/{segment_id}/compute/", headers=account.bearer)
    assert status.status_code == 200, status.get_data(as_text=True)
    body = dict(status.get_json())
    assert body["status"] == "succeeded", body
    return body


def key_with_role(api: Api, account: Account, role: str) -> dict[str, str]:
    created = api.post("/api/keys/", {"name": role, "role": role}, headers=account.bearer)
    assert created.status_code == 201, created.get_data(as_text=True)
    return {"Authorization": f"ApiKey {created.get_json()['key']}"}


def warehouse_rows(stack: LocalStack) -> dict[str, int]:
    """Row count of every table in the stack's database (to prove a read-only path wrote nothing);
    usage metering's own tables aside (a call is billable even when it writes nothing)."""
    rows = stack.runtime.warehouse.query(
        "SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() AND total_rows IS NOT NULL "
        "AND name NOT IN ('usage', 'usage_units')"
    ).rows
    return {str(name): int(count) for name, count in rows}


def computed_segment(
    stack: LocalStack, api: Api, account: Account, users: list[str], now: datetime | None = None
) -> int:
    """A segment of exactly `users` (one page view each), computed in full at `now`."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    page_views(stack, account.tenant_id, users, now - timedelta(hours=1))
    segment_id = defined_segment(api, account, VISITED)
    [outcome] = engine.compute(stack.runtime, account.tenant_id, [engine.Request(segment_id, "full")], now)
    assert outcome.status == "succeeded", outcome.error
    return segment_id


def members(api: Api, account: Account, segment_id: int) -> list[dict[str, Any]]:
    """All members through the API (segments of at most 10,000)."""
    body = api.get(f"/api/segments/{segment_id}/members/?limit=10000", headers=account.bearer).get_json()
    assert body["next_cursor"] is None
    return list(body["results"])
