"""Optimistic concurrency on segments: `ETag` on reads and writes, `If-Match` on PATCH and DELETE
(412 `precondition_failed` when someone changed the segment since it was read), through HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from segops.errors import PreconditionFailed
from segops.localstack import LocalStack
from segops.segments import service
from segops.store import keys
from segops.store.documents import DocumentRepository
from segops.store.gcs import GcsStore

from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import VISITED, computed_segment

SPENDERS = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "order_completed", "operator": "gte", "value": 2}],
}


def _create(api: Api, account: Account) -> dict[str, Any]:
    response = api.post("/api/segments/", {"name": "Shared", "definition": VISITED}, headers=account.bearer)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["ETag"] == response.get_json()["etag"]
    return dict(response.get_json())


def _versions(api: Api, account: Account, segment_id: int) -> list[int]:
    body = api.get(f"/api/segments/{segment_id}/versions/", headers=account.bearer).get_json()
    return [v["version"] for v in body["results"]]


def test_a_patch_on_a_stale_etag_is_refused_and_changes_nothing(stack: LocalStack) -> None:
    # GIVEN a segment two people opened: both read the same ETag
    api = Api(stack)
    account = api.signup()
    segment = _create(api, account)
    path = f"/api/segments/{segment['id']}/"
    read = api.get(path, headers=account.bearer)
    assert read.headers["ETag"] == read.get_json()["etag"] == segment["etag"]
    assert read.headers["ETag"].startswith('"') and read.headers["ETag"].endswith('"')
    # WHEN the first saves a new definition with If-Match
    first = api.patch(path, {"definition": SPENDERS}, headers={**account.bearer, "If-Match": segment["etag"]})
    # THEN it is saved as a new version, with a new ETag
    assert first.status_code == 200, first.get_data(as_text=True)
    saved = first.get_json()
    assert saved["version"] == 2 and saved["etag"] != segment["etag"] and first.headers["ETag"] == saved["etag"]
    # WHEN the second saves their own edit on the ETag they read
    second = api.patch(
        path, {"definition": VISITED, "name": "Mine"}, headers={**account.key, "If-Match": segment["etag"]}
    )
    # THEN it is refused with the current ETag and version, and nothing of it was written
    error = assert_error(second, 412, "precondition_failed")
    assert error["details"] == {"etag": saved["etag"], "version": 2}
    assert "ETag" not in second.headers
    now = api.get(path, headers=account.bearer).get_json()
    assert (now["definition"], now["name"], now["etag"]) == (SPENDERS, "Shared", saved["etag"])
    assert _versions(api, account, segment["id"]) == [2, 1]
    # AND sent again on the ETag it was refused with, the edit goes through
    again = api.patch(path, {"name": "Mine"}, headers={**account.bearer, "If-Match": error["details"]["etag"]})
    assert again.status_code == 200 and again.get_json()["name"] == "Mine"


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("*", 200),  # any current representation
        ('"0000", {etag}', 200),  # a list naming the current one
        ("W/{etag}", 412),  # a weak tag never matches strongly
        ("{bare}", 412),  # the tag without its quotes is another tag
        ('"0000"', 412),
    ],
)
def test_if_match_forms(stack: LocalStack, if_match: str, status: int) -> None:
    api = Api(stack)
    account = api.signup()
    segment = _create(api, account)
    header = if_match.format(etag=segment["etag"], bare=segment["etag"].strip('"'))
    response = api.patch(
        f"/api/segments/{segment['id']}/", {"active": False}, headers={**account.bearer, "If-Match": header}
    )
    assert response.status_code == status, response.get_data(as_text=True)


def test_without_if_match_the_last_write_wins_as_before(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    segment = _create(api, account)
    path = f"/api/segments/{segment['id']}/"
    assert api.patch(path, {"name": "A"}, headers=account.bearer).status_code == 200
    assert api.patch(path, {"name": "B"}, headers=account.bearer).get_json()["name"] == "B"


def test_a_compute_does_not_change_the_etag(stack: LocalStack) -> None:
    # GIVEN a segment read before its compute
    api = Api(stack)
    account = api.signup()
    segment_id = computed_segment(stack, api, account, ["u1", "u2"])
    before = api.get(f"/api/segments/{segment_id}/", headers=account.bearer).get_json()
    # WHEN another compute finishes
    response = api.post(f"/api/segments/{segment_id}/compute/", headers=account.bearer)
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    stack.bus.drain()
    after = api.get(f"/api/segments/{segment_id}/", headers=account.bearer).get_json()
    # THEN the segment as edited is unchanged: an editor's If-Match still holds
    assert after["etag"] == before["etag"] and after["member_count"] == 2
    listed = api.get("/api/segments/", headers=account.bearer).get_json()["results"]
    assert [s["etag"] for s in listed] == [before["etag"]]
    ok = api.patch(
        f"/api/segments/{segment_id}/", {"name": "x"}, headers={**account.bearer, "If-Match": before["etag"]}
    )
    assert ok.status_code == 200


def test_delete_with_a_stale_etag_is_refused(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    segment = _create(api, account)
    path = f"/api/segments/{segment['id']}/"
    renamed = api.patch(path, {"name": "Renamed"}, headers=account.bearer).get_json()
    # WHEN someone deletes the segment as they read it before the rename
    refused = api.delete(path, headers={**account.bearer, "If-Match": segment["etag"]})
    # THEN it is kept, and the refusal names what it is now
    assert assert_error(refused, 412, "precondition_failed")["details"]["etag"] == renamed["etag"]
    assert api.get(path, headers=account.bearer).status_code == 200
    # AND on the current ETag it is deleted
    assert api.delete(path, headers={**account.bearer, "If-Match": renamed["etag"]}).status_code == 204
    assert_error(api.get(path, headers=account.bearer), 404, "not_found")


def test_a_write_that_wins_the_race_after_the_first_check_still_fails_the_loser(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a segment, and an editor whose definition change passes the first check on its ETag
    api = Api(stack)
    account = api.signup()
    segment = _create(api, account)
    runtime, tenant_id, segment_id = stack.runtime, account.tenant_id, segment["id"]
    create_document = DocumentRepository.create
    raced: list[int] = []

    def create_then_lose(self: DocumentRepository, key: str, value: Any) -> None:
        create_document(self, key, value)
        if not raced and "/segment-versions/" in key:  # the loser's version exists; a rename lands before its CAS
            raced.append(1)
            service.update_segment(runtime, tenant_id, segment_id, {"name": "Winner"}, actor=None)

    monkeypatch.setattr(DocumentRepository, "create", create_then_lose)
    # WHEN it writes on the ETag it read
    with pytest.raises(PreconditionFailed):
        service.update_segment(
            runtime, tenant_id, segment_id, {}, definition=SPENDERS, actor=None, if_match=segment["etag"]
        )
    # THEN the winner's change stands, and the loser's version was removed: it never became the segment's
    assert raced
    now = service.get_segment(runtime, tenant_id, segment_id)
    assert (now.name, now.definition, now.version) == ("Winner", VISITED, 1)
    assert _versions(api, account, segment_id) == [1]


def test_of_writers_holding_one_etag_exactly_one_wins_on_gcs(
    stack: LocalStack, gcs_client: Any, gcs_bucket: str
) -> None:
    # GIVEN a segment in the control plane on the GCS JSON API, read by eight editors at once
    runtime = replace(stack.runtime, store=GcsStore(gcs_client, gcs_bucket))
    tenant_id = 9
    segment = service.create_segment(
        runtime, tenant_id, name="Raced", segment_type="rule", description="", active=False, created_by=None
    )
    read = service.etag(segment)
    rules = [{**SPENDERS, "conditions": [{**SPENDERS["conditions"][0], "value": i + 1}]} for i in range(8)]

    def save(rule: dict[str, Any]) -> str:
        try:
            service.update_segment(runtime, tenant_id, segment.id, {}, definition=rule, actor=None, if_match=read)
        except PreconditionFailed:
            return "refused"
        return "saved"

    # WHEN each saves their own definition on that ETag
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(save, rules))
    # THEN exactly one is saved, and it is the segment's only version: the others left none behind
    assert sorted(outcomes) == ["refused"] * 7 + ["saved"]
    now = service.get_segment(runtime, tenant_id, segment.id)
    assert now.definition == rules[outcomes.index("saved")]
    assert [v.version for v in service.list_versions(runtime, tenant_id, segment.id)] == [now.version]
    # AND a delete on the ETag read before is refused; on the current one it deletes
    with pytest.raises(PreconditionFailed):
        service.delete_segment(runtime, tenant_id, segment.id, if_match=read)
    service.delete_segment(runtime, tenant_id, segment.id, if_match=service.etag(now))
    assert runtime.store.get(keys.segment_key(tenant_id, segment.id)) is None


def test_a_patch_that_changes_nothing_writes_nothing(stack: LocalStack) -> None:
    # GIVEN a segment an editor has open (its ETag read)
    api = Api(stack)
    account = api.signup()
    segment = _create(api, account)
    path = f"/api/segments/{segment['id']}/"
    # WHEN someone else saves it as it is: no fields, the same name, active flag and definition
    for body in ({}, {"name": "Shared"}, {"active": segment["active"]}, {"definition": VISITED}):
        same = api.patch(path, body, headers=account.key)
        # THEN nothing is written: the same version, ETag and updated_at
        assert same.status_code == 200, same.get_data(as_text=True)
        assert (same.get_json()["etag"], same.headers["ETag"]) == (segment["etag"], segment["etag"])
        assert same.get_json()["updated_at"] == segment["updated_at"] and same.get_json()["version"] == 1
    assert _versions(api, account, segment["id"]) == [1]
    # AND the editor's save on the ETag they read still goes through
    saved = api.patch(path, {"name": "Mine"}, headers={**account.bearer, "If-Match": segment["etag"]})
    assert saved.status_code == 200 and saved.get_json()["etag"] != segment["etag"]


def test_a_boolean_where_a_number_was_is_a_new_definition(stack: LocalStack) -> None:
    # GIVEN a segment on `vip = 1` (true == 1 in Python, not in the DSL: booleans are not numbers)
    api = Api(stack)
    account = api.signup()
    number = {
        "logic": "AND",
        "conditions": [{"type": "user_property", "property": "vip", "operator": "eq", "value": 1}],
    }
    boolean = {**number, "conditions": [{**number["conditions"][0], "value": True}]}
    created = api.post("/api/segments/", {"name": "VIP", "definition": number}, headers=account.bearer).get_json()
    # WHEN the value is changed to true
    changed = api.patch(f"/api/segments/{created['id']}/", {"definition": boolean}, headers=account.bearer)
    # THEN that is a new version holding true
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["version"] == 2
    assert changed.get_json()["definition"]["conditions"][0]["value"] is True
    assert _versions(api, account, created["id"]) == [2, 1]
