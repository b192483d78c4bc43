from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from segops import clock
from segops.errors import RetryableError
from segops.exports import models as m
from segops.exports.worker import run_export
from segops.localstack import LocalStack
from segops.messages import ExportRequested
from segops.store import keys

from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import VISITED, computed_segment, defined_segment, key_with_role, members

NOW = datetime.now(UTC).replace(microsecond=0)


def export(api: Api, account: Account, segment_id: int, fmt: str) -> tuple[dict[str, Any], bytes]:
    """POST, deliver the bus message to export_worker, poll, download; returns (poll body, file)."""
    started = api.post(f"/api/segments/{segment_id}/export/", {"format": fmt}, headers=account.bearer)
    assert started.status_code == 202, started.get_data(as_text=True)
    queued = started.get_json()
    assert queued["status"] == "queued" and queued["format"] == fmt and isinstance(queued["export_id"], int)
    api.stack.bus.drain()
    poll = api.get(f"/api/segments/{segment_id}/export/?export_id={queued['export_id']}", headers=account.bearer)
    assert poll.status_code == 200, poll.get_data(as_text=True)
    status = poll.get_json()
    download = api.get(f"/api/segments/exports/{queued['export_id']}/download/", headers=account.bearer)
    assert download.status_code == 200, download.get_data(as_text=True)
    return status, download.get_data()


def test_csv_and_parquet_read_back_equal_the_members_list(stack: LocalStack) -> None:
    # GIVEN a computed segment of 1,234 members
    api = Api(stack)
    account = api.signup()
    segment_id = computed_segment(stack, api, account, [f"user-{i:04d}" for i in range(1_234)], NOW)
    expected = members(api, account, segment_id)
    assert len(expected) == 1_234
    # WHEN exported as CSV
    status, body = export(api, account, segment_id, "csv")
    # THEN the poll shows a finished export with timestamps and the row count
    assert status["status"] == "succeeded" and status["row_count"] == 1_234 and status["format"] == "csv"
    assert status["created_at"] <= status["started_at"] <= status["finished_at"]
    # AND the CSV (with a header row) holds exactly the members, in order
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["user_id"] for r in rows] == [e["user_id"] for e in expected]
    assert {r["computed_at"][:19] for r in rows} == {NOW.strftime("%Y-%m-%d %H:%M:%S")}
    # WHEN exported as Parquet THEN pyarrow reads the same members and timestamps back
    status, body = export(api, account, segment_id, "parquet")
    assert status["status"] == "succeeded" and status["row_count"] == 1_234
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == ["user_id", "computed_at"]
    assert [u.decode() if isinstance(u, bytes) else u for u in table.column("user_id").to_pylist()] == [
        e["user_id"] for e in expected
    ]
    stamps = {t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in table.column("computed_at").to_pylist()}
    assert stamps == {NOW}


def test_export_of_a_segment_never_computed_is_an_empty_file_with_header(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    segment_id = defined_segment(api, account, VISITED)
    status, body = export(api, account, segment_id, "csv")
    assert status["row_count"] == 0
    assert body.decode().strip() == '"user_id","computed_at"'


def test_csv_export_cells_never_start_a_formula(stack: LocalStack) -> None:
    # GIVEN members whose ids a spreadsheet would run as formulas
    api = Api(stack)
    account = api.signup()
    hostile = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "safe-id", "a=b"]
    segment_id = computed_segment(stack, api, account, hostile, NOW)
    # WHEN exported as CSV
    _, body = export(api, account, segment_id, "csv")
    # THEN each such cell is prefixed with ' (spreadsheets show it as text), the rest are untouched
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert sorted(r["user_id"] for r in rows) == sorted("'" + u if u[0] in "=+-@\t\r" else u for u in hostile)
    # AND Parquet (typed, never evaluated) keeps the ids as they are
    _, parquet = export(api, account, segment_id, "parquet")
    ids = [
        u.decode() if isinstance(u, bytes) else u
        for u in pq.read_table(io.BytesIO(parquet)).column("user_id").to_pylist()
    ]
    assert sorted(ids) == sorted(hostile)


def test_large_export_streams_under_a_fixed_python_memory_bound(stack: LocalStack) -> None:
    # GIVEN a segment of 1,000,000 members with UUID-sized ids
    api = Api(stack)
    account = api.signup()
    users = [f"{i:08d}-0000-4000-8000-{i:012d}" for i in range(1_000_000)]
    segment_id = computed_segment(stack, api, account, users)
    record = stack.runtime.documents
    export_id = record.new_id("exports")
    record.create(
        keys.export_key(account.tenant_id, export_id),
        m.Export(id=export_id, tenant=account.tenant_id, segment_id=segment_id, format="csv"),
    )
    # WHEN the worker renders it as CSV while Python allocations are traced
    tracemalloc.start()
    try:
        done = run_export(
            stack.runtime,
            ExportRequested(tenant_id=account.tenant_id, segment_id=segment_id, export_id=export_id, format="csv"),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN the file is over 60 MB, but Python never held more than its fixed copy buffers
    # (1 MiB warehouse copy chunk, 1 MiB upload chunk, two 256 KiB pipe buffers): 6 MiB whatever the size
    assert done.status == "succeeded" and done.row_count == 1_000_000
    assert done.size_bytes is not None and done.size_bytes > 60_000_000
    assert peak < 6 * 1024 * 1024, peak
    with stack.runtime.objects.open(done.object_key or "") as handle:
        assert sum(1 for _ in handle) == 1_000_001


def test_export_roles_and_tenant_isolation(stack: LocalStack) -> None:
    api = Api(stack)
    owner, stranger = api.signup(), api.signup()
    segment_id = computed_segment(stack, api, owner, ["a", "b"])
    status, _ = export(api, owner, segment_id, "parquet")
    export_id = status["export_id"]
    start = f"/api/segments/{segment_id}/export/"
    poll = f"{start}?export_id={export_id}"
    download = f"/api/segments/exports/{export_id}/download/"
    # a viewer reads members but may not export, poll or download
    viewer = key_with_role(api, owner, "viewer")
    assert_error(api.post(start, {"format": "csv"}, headers=viewer), 403, "forbidden")
    assert_error(api.get(poll, headers=viewer), 403, "forbidden")
    assert_error(api.get(download, headers=viewer), 403, "forbidden")
    # another tenant sees none of it
    for response in (
        api.post(start, {"format": "csv"}, headers=stranger.bearer),
        api.get(poll, headers=stranger.bearer),
        api.get(download, headers=stranger.key),
    ):
        assert_error(response, 404, "not_found")
    # an export id polled under the wrong segment is unknown; bad formats are 400 with a pointer
    other_segment = defined_segment(api, owner, VISITED, "other")
    assert_error(api.get(f"/api/segments/{other_segment}/export/?export_id={export_id}", headers=owner.bearer), 404)
    bad = api.post(start, {"format": "xlsx"}, headers=owner.bearer)
    assert assert_error(bad, 400)["details"]["errors"][0]["pointer"] == "/format"
    # an unfinished export cannot be downloaded yet
    queued = api.post(start, {"format": "csv"}, headers=owner.bearer).get_json()
    assert_error(api.get(f"/api/segments/exports/{queued['export_id']}/download/", headers=owner.bearer), 409)


def export_failing_with(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> tuple[Api, Account, ExportRequested]:
    """A queued CSV export of a computed one-member segment, whose upload raises `error`."""
    api = Api(stack)
    account = api.signup()
    segment_id = computed_segment(stack, api, account, ["u1"], NOW)

    def broken(*_: object) -> int:
        raise error

    monkeypatch.setattr(stack.runtime.objects, "upload", broken)
    started = api.post(f"/api/segments/{segment_id}/export/", {"format": "csv"}, headers=account.bearer)
    export_id = started.get_json()["export_id"]
    return (
        api,
        account,
        ExportRequested(tenant_id=account.tenant_id, segment_id=segment_id, export_id=export_id, format="csv"),
    )


def export_poll(request: ExportRequested) -> str:
    return f"/api/segments/{request.segment_id}/export/?export_id={request.export_id}"


def test_failed_export_tells_the_tenant_an_incident_id_not_the_exception(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an object store failing with internal details in its message
    error = OSError("upload to gs://segops-exports-prod/internal/path refused for sa-export@proj")
    api, account, request = export_failing_with(stack, monkeypatch, error)
    with pytest.raises(RetryableError):
        run_export(stack.runtime, request)
    # WHEN the tenant polls THEN the export failed with a generic message naming the logged incident
    poll = api.get(export_poll(request), headers=account.bearer).get_json()
    [logged] = [r for r in caplog.records if r.getMessage() == "export failed"]
    assert poll["status"] == "failed" and f"incident {logged.__dict__['incident']}" in poll["error"]
    assert "gs://" not in poll["error"] and "OSError" not in poll["error"]


def test_an_export_the_bus_will_retry_stays_queued_until_its_last_attempt(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an object store that is down
    api, account, request = export_failing_with(stack, monkeypatch, ConnectionError("object store unreachable"))
    poll = export_poll(request)
    # WHEN an attempt the bus will retry fails THEN the export reads as queued, with no error
    with pytest.raises(RetryableError):
        run_export(stack.runtime, request, final_attempt=False)
    shown = api.get(poll, headers=account.bearer).get_json()
    assert (shown["status"], shown["error"]) == ("queued", None)
    # AND only the last attempt records it failed
    with pytest.raises(RetryableError):
        run_export(stack.runtime, request, final_attempt=True)
    assert api.get(poll, headers=account.bearer).get_json()["status"] == "failed"
    # AND once the store is back, a retry finishes it
    monkeypatch.undo()
    assert run_export(stack.runtime, request).status == "succeeded"


def test_an_export_past_its_retention_is_gone_and_says_when_it_went(stack: LocalStack) -> None:
    # GIVEN a finished export (files are kept SEGOPS_EXPORT_RETENTION_DAYS, 7 by default)
    api = Api(stack)
    account = api.signup()
    segment_id = computed_segment(stack, api, account, ["user-1"], NOW)
    status, _ = export(api, account, segment_id, "csv")
    finished = datetime.fromisoformat(status["finished_at"])
    assert datetime.fromisoformat(status["expires_at"]) == finished + timedelta(days=7)
    poll = f"/api/segments/{segment_id}/export/?export_id={status['export_id']}"
    download = f"/api/segments/exports/{status['export_id']}/download/"
    # WHEN the retention has passed (the bucket's lifecycle deletes the file then)
    with clock.frozen(finished + timedelta(days=7)):
        # THEN the poll offers no download, and the download is 410 naming the expiry
        # (an API key: the session's access token has expired by then)
        assert api.get(poll, headers=account.key).get_json()["download_url"] is None
        gone = assert_error(api.get(download, headers=account.key), 410, "gone")
        assert gone["details"]["expired_at"] == status["expires_at"].replace("Z", "+00:00")
    # AND a file deleted before its time is the same 410, not a 500
    stored = stack.runtime.documents.load(keys.export_key(account.tenant_id, status["export_id"]), m.Export)
    assert stored is not None and stored.object_key is not None
    (stack.settings.objects_dir / stored.object_key).unlink()
    assert_error(api.get(download, headers=account.bearer), 410, "gone")
