"""File connector: the diff (and optionally the snapshot) per compute, as CSV or Parquet objects."""

from __future__ import annotations

import csv
import io

import pyarrow.parquet as pq
import pytest
from segops.connectors import files
from segops.connectors import models as m
from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error
from tests.support.membership import RecordedMembership


def _create(api: Api, account: Account, segment_id: int, **config: object) -> int:
    response = api.post(
        "/api/connectors/",
        {"name": "Lake", "type": "file", "segment_id": segment_id, "active": True, "config": config},
        headers=account.bearer,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["credentials_set"] is False
    connector_id: int = response.get_json()["id"]
    return connector_id


def test_csv_diff_and_snapshot_per_compute_rewritten_on_redelivery(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership
) -> None:
    # GIVEN a file connector with snapshots, activated on a two-member segment
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["a", "b"])
    connector = _create(api, account, segment, format="csv", prefix="exports/activation", snapshot=True)
    stack.bus.drain()
    # WHEN a compute changes membership and its message is delivered twice
    change = membership.compute(tenant, segment, ["b", "c", "d"])
    membership.publish(change)
    membership.publish(change)
    stack.bus.drain()
    # THEN one folder per compute holds the diff with timestamps and the full snapshot
    syncs = api.get(f"/api/connectors/{connector}/syncs/", headers=account.bearer).get_json()["results"]
    latest = syncs[0]
    assert (latest["added"], latest["removed"], latest["status"]) == (2, 1, "succeeded")
    changes_key, snapshot_key = latest["files"]
    assert syncs[1]["files"] == latest["files"], "a redelivery rewrites the same objects"
    assert changes_key.startswith(f"{tenant}/exports/activation/connector-{connector}/segment-{segment}/")
    rows = list(csv.DictReader(io.TextIOWrapper(stack.runtime.objects.open(changes_key), encoding="utf-8")))
    assert sorted((r["user_id"], r["change"]) for r in rows) == [("a", "exited"), ("c", "entered"), ("d", "entered")]
    assert {r["changed_at"] for r in rows} == {change.computed_at.isoformat()}
    snapshot = list(csv.DictReader(io.TextIOWrapper(stack.runtime.objects.open(snapshot_key), encoding="utf-8")))
    assert sorted(r["user_id"] for r in snapshot) == ["b", "c", "d"]
    # AND the activation's full sync wrote a snapshot of the members at that time
    first = syncs[-1]
    assert first["kind"] == "full" and first["files"][0].endswith("/snapshot.csv")


def test_parquet_diff(stack: LocalStack, api: Api, account: Account, membership: RecordedMembership) -> None:
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, [])
    connector = _create(api, account, segment, format="parquet")
    stack.bus.drain()
    membership.publish(membership.compute(tenant, segment, [f"u{i}" for i in range(1000)]))
    stack.bus.drain()
    latest = api.get(f"/api/connectors/{connector}/syncs/", headers=account.bearer).get_json()["results"][0]
    table = pq.read_table(io.BytesIO(stack.runtime.objects.open(latest["files"][0]).read()))
    assert table.column_names == ["user_id", "change", "changed_at"]
    assert table.num_rows == 1000 and set(table.column("change").to_pylist()) == {"entered"}


HOSTILE = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "safe-id", "a=b"]


def test_csv_cells_never_start_a_formula_and_keys_stay_in_the_tenant_folder(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership
) -> None:
    # GIVEN user ids a spreadsheet would run as formulas, and a prefix naming another tenant's id
    tenant = account.tenant_id
    other = api.signup(slug="other-tenant").tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, [])
    connector = _create(api, account, segment, format="csv", prefix=f"{other}/exports", snapshot=True)
    stack.bus.drain()
    membership.publish(membership.compute(tenant, segment, HOSTILE))
    stack.bus.drain()
    latest = api.get(f"/api/connectors/{connector}/syncs/", headers=account.bearer).get_json()["results"][0]
    # THEN every key starts with this tenant's id, whatever the prefix says
    assert latest["files"] and all(key.startswith(f"{tenant}/{other}/exports/connector-") for key in latest["files"])
    for key in latest["files"]:
        rows = list(csv.DictReader(io.TextIOWrapper(stack.runtime.objects.open(key), encoding="utf-8", newline="")))
        # AND formula-leading ids are prefixed with ' (shown as text), others are untouched
        assert sorted(r["user_id"] for r in rows) == sorted("'" + u if u[0] in "=+-@\t\r" else u for u in HOSTILE)


def test_a_connector_that_fails_keeps_no_other_from_its_diff_nor_repeats_them(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two connectors on one segment, the first of which fails with an error of its own (a bug,
    # not an outage a redelivery could outlive)
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["a"])
    broken, healthy = _create(api, account, segment, prefix="broken"), _create(api, account, segment, prefix="ok")
    stack.bus.drain()
    write_changes = files.write_changes

    def failing(objects: object, config: m.FileConfig, base: str, *args: object) -> object:
        if f"connector-{broken}/" in base:
            raise ValueError("this connector's own bug")
        return write_changes(objects, config, base, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "write_changes", failing)
    # WHEN a compute changes membership
    membership.publish(membership.compute(tenant, segment, ["a", "b"]))
    stack.bus.drain()

    # THEN the broken one's sync is failed, the healthy one's succeeded, once: no redelivery repeated it
    def incremental(connector: int) -> list[dict[str, object]]:
        syncs = api.get(f"/api/connectors/{connector}/syncs/", headers=account.bearer).get_json()["results"]
        return [s for s in syncs if s["kind"] == "incremental"]

    assert [s["status"] for s in incremental(broken)] == ["failed"]
    assert [(s["status"], s["added"]) for s in incremental(healthy)] == [("succeeded", 1)]


def test_credentials_that_cannot_be_sent_in_a_header_are_refused(api: Api, account: Account) -> None:
    # (a CR/LF made every send fail with an error whose text, the key included, reached the logs)
    body = {"name": "b", "type": "braze", "segment_id": 1, "credentials": {"api_key": "k\r\nX-Evil: 1"}}
    # (refused by the body's model, before the segment is looked up)
    body["config"] = {"rest_endpoint": "https://rest.iad-01.braze.com", "subscription_group_id": "sg"}
    response = api.post("/api/connectors/", body, headers=account.bearer)
    assert response.status_code == 400
    assert [e["pointer"] for e in response.get_json()["error"]["details"]["errors"]] == ["/credentials/api_key"]


def test_a_file_connector_takes_no_credentials(api: Api, account: Account, membership: RecordedMembership) -> None:
    segment = membership.segment(account.tenant_id)
    body = {"name": "x", "type": "file", "segment_id": segment, "credentials": {"api_key": "abc"}}
    response = api.post("/api/connectors/", body, headers=account.bearer)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert [e["pointer"] for e in response.get_json()["error"]["details"]["errors"]] == ["/credentials"]
    assert api.get("/api/connectors/", headers=account.bearer).get_json()["results"] == []


@pytest.mark.parametrize(
    "base_url",
    ["https://user:pw@a.klaviyo.com", "https://a.klaviyo.com/?token=x", "https://a.klaviyo.com/#x"],
)
def test_a_platform_url_holds_no_credentials_query_or_fragment(
    api: Api, account: Account, membership: RecordedMembership, base_url: str
) -> None:
    # (config is shown in every answer and not sealed: a password in a URL would be)
    segment = membership.segment(account.tenant_id)
    body = {"name": "k", "type": "klaviyo", "segment_id": segment, "config": {"list_id": "L1", "base_url": base_url}}
    response = api.post("/api/connectors/", {**body, "credentials": {"api_key": "pk_x"}}, headers=account.bearer)
    error = assert_error(response, 400, "validation_failed")
    assert [e["pointer"] for e in error["details"]["errors"]] == ["/config/base_url"], error


def test_a_deleted_segments_connector_pushes_nothing_more(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership
) -> None:
    # GIVEN an active connector on a segment with members, and a full sync queued but not yet run
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["a", "b"])
    connector = _create(api, account, segment)
    stack.bus.drain()
    queued = api.post(f"/api/connectors/{connector}/sync/", headers=account.bearer)
    assert queued.status_code == 202
    # WHEN the segment is deleted before that sync runs
    assert api.delete(f"/api/segments/{segment}/", headers=account.bearer).status_code == 204
    stack.bus.drain()
    # THEN the sync pushes nothing and says why, and the connector is stopped
    path = f"/api/connectors/{connector}/"
    [latest, *_] = api.get(path + "syncs/", headers=account.bearer).get_json()["results"]
    assert latest["status"] == "failed" and "was deleted" in latest["error_summary"][0]
    assert api.get(path, headers=account.bearer).get_json()["active"] is False
    # AND it can be neither synced nor switched on again until it follows another segment
    assert_error(api.post(path + "sync/", headers=account.bearer), 409, "conflict")
    error = assert_error(api.patch(path, {"active": True}, headers=account.bearer), 400, "validation_failed")
    assert [e["pointer"] for e in error["details"]["errors"]] == ["/segment_id"]
