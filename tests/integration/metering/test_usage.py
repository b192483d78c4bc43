"""Usage metering end to end: HTTP calls and bus deliveries as production makes them, redeliveries
included, then `GET /api/usage/` reports each billable unit exactly once."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from segops import clock
from segops.bus.base import Topic
from segops.config import Settings
from segops.localstack import LocalStack
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse

from tests.support.api import Account, Api, assert_error
from tests.support.clickhouse_http import ChdbHttpServer
from tests.support.ingestion import deliver, record_topic
from tests.support.segment_api import VISITED, defined_segment, key_with_role

USAGE = "/api/usage/"


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


@pytest.fixture
def account(api: Api) -> Account:
    return api.signup()


def usage(api: Api, account: Account, query: str = "") -> dict[str, Any]:
    response = api.get(f"{USAGE}?{query}", headers=account.bearer)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def breakdown(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(row["metric"], row["dimension"]): row["value"] for row in report["breakdown"]}


def test_every_billable_unit_is_counted_once_under_redelivery_and_retries(
    stack: LocalStack, api: Api, account: Account
) -> None:
    events_topic = record_topic(stack, Topic.EVENTS)
    compute_topic = record_topic(stack, Topic.SEGMENT_COMPUTE)
    exports_topic = record_topic(stack, Topic.SEGMENT_EXPORTS)
    changes_topic = record_topic(stack, Topic.MEMBERSHIP_CHANGES)
    before = usage(api, account)
    # GIVEN a batch of three page views (each with a message_id) and one invalid event
    views = [{"user_id": f"u{i}", "event_type": "page_viewed", "message_id": f"view-{i}"} for i in range(3)]
    batch = api.post("/api/ingestion/track/batch/", {"events": [*views, {"user_id": ""}]}, headers=account.key)
    assert batch.get_json() == {"queued": 3, "skipped": 1}
    stack.bus.drain()
    # AND Pub/Sub delivering that message again, and the client retrying one event
    [message] = events_topic
    assert deliver(stack, "event_writer", message) == 200
    assert api.post("/api/ingestion/track/", views[0], headers=account.key).status_code == 202
    stack.bus.drain()
    # AND a segment with a file connector, computed, its compute request and its change delivered twice
    segment_id = defined_segment(api, account, VISITED)
    connector = {"name": "Files", "type": "file", "segment_id": segment_id, "active": True, "config": {"format": "csv"}}
    created = api.post("/api/connectors/", connector, headers=account.bearer)
    assert created.status_code == 201
    assert api.post(f"/api/segments/{segment_id}/compute/", headers=account.bearer).status_code == 202
    stack.bus.drain()
    requested = [m for m in compute_topic if m.attributes.get("kind") != "users_changed"]
    assert requested and deliver(stack, "segment_compute", requested[-1]) == 200
    [change] = changes_topic
    assert deliver(stack, "connector_sync", change) == 200
    syncs = api.get(f"/api/connectors/{created.get_json()['id']}/syncs/", headers=account.bearer).get_json()
    assert sorted(s["kind"] for s in syncs["results"]) == ["full", "incremental", "incremental"]
    # AND an export of it, its message delivered twice
    started = api.post(f"/api/segments/{segment_id}/export/", {"format": "csv"}, headers=account.bearer)
    assert started.status_code == 202
    stack.bus.drain()
    [export_message] = exports_topic
    assert deliver(stack, "export_worker", export_message) == 200
    poll = api.get(
        f"/api/segments/{segment_id}/export/?export_id={started.get_json()['export_id']}", headers=account.bearer
    )
    exported = poll.get_json()
    # AND a sandbox call and an AI draft
    sandbox = api.post(
        "/api/explorer/sandbox/publish/", {"user_id": "u9", "event_type": "page_viewed"}, headers=account.bearer
    )
    assert sandbox.status_code == 200
    drafted = api.post("/api/segments/ai/draft/", {"prompt": "viewed pricing recently"}, headers=account.bearer)
    assert drafted.status_code == 200, drafted.get_data(as_text=True)

    # WHEN the owner reads the usage of the current day
    after = usage(api, account)

    # THEN events: 3 accepted and stored (the client's retry of one is the same event), 1 refused
    totals = after["totals"]
    assert (totals["events_accepted"], totals["events_refused"], totals["events_stored"]) == (3, 1, 3)
    # AND one compute (the redelivered request ran nothing) with what its queries read
    assert totals["computes"] == 1
    assert totals["compute_rows_read"] >= 3 and totals["compute_bytes_read"] > 0 and totals["compute_elapsed_us"] > 0
    # AND one export, its rows and bytes as the export reports them
    assert (totals["exports"], totals["export_rows"], totals["export_bytes"]) == (
        1,
        exported["row_count"],
        exported["size_bytes"],
    )
    assert exported["row_count"] == 3 and exported["size_bytes"] > 0
    # AND two connector syncs: the full one on activation (the 3 members: setting the definition queued
    # the compute before it, which the explicit request joined), and the change's (3 entered; its
    # redelivery ran the same change again: counted once)
    assert (totals["connector_syncs"], totals["connector_users_pushed"]) == (2, 6)
    # AND one sandbox call, one AI draft
    assert (totals["sandbox_calls"], totals["ai_drafts"]) == (1, 1)
    counted = breakdown(after)
    assert counted[("ai_drafts", "offline")] == 1 and counted[("computes", "full")] == 1
    assert counted[("export_rows", "csv")] == 3 and counted[("connector_syncs", "file")] == 2
    # AND API calls per function and status class: the requests above, plus the first usage read
    assert counted[("api_calls", "track_batch:2xx")] == 1 and counted[("api_calls", "track:2xx")] == 1
    assert counted[("api_calls", "sandbox:2xx")] == 1
    earlier = breakdown(before).get(("api_calls", "api:2xx"), 0)
    # segment create + patch, connector, its syncs, compute, export, poll, draft, the usage read `before`
    assert counted[("api_calls", "api:2xx")] == earlier + 9
    # AND the timeseries adds up to the totals
    assert sum(bucket["values"].get("api_calls", 0) for bucket in after["timeseries"]) == totals["api_calls"]


def test_a_retried_batch_is_accepted_once_per_message_id(stack: LocalStack, api: Api, account: Account) -> None:
    # GIVEN a batch of three events with message ids, and one of two events without
    identified = {"events": [{"user_id": f"u{i}", "event_type": "paid", "message_id": f"pay-{i}"} for i in range(3)]}
    anonymous = {"events": [{"user_id": f"u{i}", "event_type": "viewed"} for i in range(2)]}
    # WHEN the client sends each twice (its first answers were lost), and Pub/Sub delivers them all
    for body in (identified, identified, anonymous, anonymous):
        assert api.post("/api/ingestion/track/batch/", body, headers=account.key).status_code == 202
    stack.bus.drain()
    # THEN the events with message ids are accepted once, as they are stored once; the others are new
    # events on every send (the retry cannot be told apart), accepted and stored twice
    counted = breakdown(usage(api, account))
    assert (counted[("events_accepted", "api")], counted[("events_stored", "")]) == (3 + 4, 3 + 4)


def test_usage_is_per_tenant_and_for_owners_and_admins_only(api: Api, account: Account) -> None:
    # GIVEN events from one tenant
    assert (
        api.post("/api/ingestion/track/", {"user_id": "u", "event_type": "x"}, headers=account.key).status_code == 202
    )
    api.stack.bus.drain()
    # THEN another tenant's owner sees none of them
    other = api.signup()
    assert usage(api, other)["totals"]["events_accepted"] == 0
    assert usage(api, account)["totals"]["events_accepted"] == 1
    # AND an admin key reads usage; member and viewer keys are refused
    assert api.get(USAGE, headers=account.key).status_code == 200
    for role in ("member", "viewer"):
        assert_error(api.get(USAGE, headers=key_with_role(api, account, role)), 403, "forbidden")
    assert_error(api.get(USAGE), 401, "unauthorized")


def test_day_granularity_and_csv_report_the_same_units(api: Api, account: Account) -> None:
    assert (
        api.post("/api/ingestion/track/", {"user_id": "u", "event_type": "x"}, headers=account.key).status_code == 202
    )
    api.stack.bus.drain()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    period = f"from={today:%Y-%m-%d}&to={today + timedelta(days=1):%Y-%m-%d}&granularity=day"
    report = usage(api, account, period)
    assert report["granularity"] == "day" and [b["start"][:10] for b in report["timeseries"]] == [f"{today:%Y-%m-%d}"]
    assert report["totals"]["events_stored"] == 1
    # WHEN the same period is asked as CSV
    response = api.get(f"{USAGE}?{period}&format=csv", headers=account.bearer)
    # THEN it is a CSV download with one row per bucket, metric and dimension
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["start"] for r in rows} == {f"{today:%Y-%m-%dT%H:%M:%SZ}"}
    stored = [r for r in rows if r["metric"] == "events_stored"]
    assert [(r["dimension"], r["value"]) for r in stored] == [("", "1")]
    # the CSV read itself is a call too: it was counted after the JSON report was made
    api_calls = sum(int(r["value"]) for r in rows if r["metric"] == "api_calls")
    assert api_calls == report["totals"]["api_calls"] + 1


BAD_QUERIES = [
    ("granularity=week", "/query/granularity"),
    ("format=xml", "/query/format"),
    ("from=yesterday", "/query/from"),
    ("from=0805-11-20T06:03:12Z", "/query/from"),
    ("to=2106-01-01T00:00:00Z", "/query/to"),
    ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "/query"),
    # inside one hour, `from` after `to`: refused as sent, not after rounding to the hour
    ("from=2026-01-01T00:30:00Z&to=2026-01-01T00:10:00Z", "/query"),
    ("from=2026-01-01&to=2026-03-01&granularity=hour", "/query"),
    ("from=2024-01-01&to=2026-01-01&granularity=day", "/query"),
    ("unknown=1", "/query/unknown"),
]


def test_bad_parameters_are_400_with_a_pointer(api: Api, account: Account) -> None:
    for query, pointer in BAD_QUERIES:
        body = assert_error(api.get(f"{USAGE}?{query}", headers=account.bearer), 400, "validation_failed")
        assert [e["pointer"] for e in body["details"]["errors"]] == [pointer], query


def test_the_period_is_whole_buckets(api: Api, account: Account) -> None:
    report = usage(api, account, "from=2026-01-01T00:20:00.5Z&to=2026-01-01T05:30:00.123456Z")
    assert (report["start"], report["end"]) == ("2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z")
    report = usage(api, account, "from=2026-01-01T12:00:00Z&to=2026-01-03T00:00:00Z&granularity=day")
    assert (report["start"], report["end"]) == ("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")
    # AND by default the last 24 hours including the current one, even at its very first instant
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with clock.frozen(hour):  # an API key: a JWT issued later than the frozen instant is not valid yet
        report = api.get(USAGE, headers=account.key).get_json()
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    assert (report["start"], report["end"]) == (
        f"{hour - timedelta(hours=23):{stamp}}",
        f"{hour + timedelta(hours=1):{stamp}}",
    )


def test_the_openapi_document_offers_both_forms(api: Api) -> None:
    document = api.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/usage/"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert operation["x-segops-min-role"] == "admin"
    assert {p["name"] for p in operation["parameters"]} == {"from", "to", "granularity", "format"}


def test_a_stack_on_a_clickhouse_server_meters_from_the_response_summaries(
    settings: Settings, clickhouse_http: ChdbHttpServer
) -> None:
    # GIVEN the stack on clickhouse-connect (ClickHouse's HTTP protocol, executed by chDB)
    server_stack = LocalStack(
        settings, warehouse=ClickHouseWarehouse(clickhouse_http.url, "default", "", settings.clickhouse_database)
    )
    try:
        api = Api(server_stack)
        account = api.signup()
        # WHEN events are stored and a segment computed
        views = {"events": [{"user_id": f"u{i}", "event_type": "page_viewed"} for i in range(5)]}
        assert api.post("/api/ingestion/track/batch/", views, headers=account.key).status_code == 202
        server_stack.bus.drain()
        segment_id = defined_segment(api, account, VISITED)
        assert api.post(f"/api/segments/{segment_id}/compute/", headers=account.bearer).status_code == 202
        server_stack.bus.drain()
        totals = usage(api, account)["totals"]
    finally:
        server_stack.stop()
    # THEN the compute's reads come from X-ClickHouse-Summary, and CPU time (query_log only) is 0
    assert (totals["events_stored"], totals["computes"]) == (5, 1)
    assert totals["compute_rows_read"] >= 5 and totals["compute_bytes_read"] > 0 and totals["compute_elapsed_us"] > 0
    assert totals["compute_cpu_us"] == 0
