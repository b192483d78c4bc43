"""Klaviyo list sync through the whole stack: API → bus → connector functions → contract server."""

from __future__ import annotations

import hashlib
import logging

import pytest
from segops.localstack import LocalStack
from segops.store import keys

from tests.integration.connectors.conftest import API_KEY
from tests.support.api import Account, Api
from tests.support.membership import RecordedMembership, identify
from tests.support.platforms import FakeKlaviyo


def _emails(users: set[str] | list[str]) -> set[str]:
    return {f"{u}@example.com" for u in users}


def _create(api: Api, account: Account, klaviyo: FakeKlaviyo, segment_id: int, **config: object) -> dict[str, object]:
    response = api.post(
        "/api/connectors/",
        {
            "name": "VIP list",
            "type": "klaviyo",
            "segment_id": segment_id,
            "active": True,
            "config": {"list_id": "Y6nRLr", "base_url": klaviyo.url, **config},
            "credentials": {"api_key": API_KEY},
        },
        headers=account.bearer,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, object] = response.get_json()
    return body


def test_enter_exit_redelivery_and_stale_diffs_converge_to_membership(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, klaviyo: FakeKlaviyo
) -> None:
    # GIVEN users with emails, one without, and a segment with three members
    tenant = account.tenant_id
    users = [f"u{i}" for i in range(1, 7)]
    identify(stack.runtime, tenant, {u: {"email": f"{u}@example.com"} for u in users})
    identify(stack.runtime, tenant, {"no-email": {"name": "anonymous"}})
    segment = membership.segment(tenant)
    first = membership.compute(tenant, segment, ["u1", "u2", "u3", "no-email"])
    # WHEN an active connector is created
    connector = _create(api, account, klaviyo, segment)
    stack.bus.drain()
    # THEN the full sync put every member with an email on the list, and skipped the one without
    assert klaviyo.members() == _emails(["u1", "u2", "u3"])
    syncs = api.get(f"/api/connectors/{connector['id']}/syncs/", headers=account.bearer).get_json()["results"]
    assert syncs[0]["kind"] == "full" and syncs[0]["status"] == "succeeded"
    assert (syncs[0]["added"], syncs[0]["skipped"]) == (3, 1)
    assert syncs[0]["skip_reasons"] == {"no email user property": 1}

    # WHEN a compute moves users in and out
    second = membership.compute(tenant, segment, ["u2", "u3", "u4", "u5", "no-email"])
    membership.publish(second)
    stack.bus.drain()
    # THEN the list equals the members with an email
    assert klaviyo.members() == _emails(["u2", "u3", "u4", "u5"])

    # WHEN the same message is delivered again, and an older compute's diff arrives late
    membership.publish(second)
    membership.publish(first)
    stack.bus.drain()
    # THEN nothing changes: redelivery is idempotent, the stale diff is recorded and not applied
    assert klaviyo.members() == _emails(["u2", "u3", "u4", "u5"])
    syncs = api.get(f"/api/connectors/{connector['id']}/syncs/", headers=account.bearer).get_json()["results"]
    assert [s["status"] for s in syncs[:2]] == ["stale", "succeeded"]
    assert not klaviyo.violations


def test_batches_stay_within_1000_profiles_and_faults_are_retried(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, klaviyo: FakeKlaviyo
) -> None:
    # GIVEN 2,300 members keyed by external_id
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    members = [f"user-{i:05d}" for i in range(2300)]
    membership.compute(tenant, segment, members)
    # AND the platform rate-limits, errors and times out in the middle of the list writes
    klaviyo.inject("429", "/relationships/", retry_after="0")
    klaviyo.inject("500", "/relationships/", skip=1)
    klaviyo.inject("timeout", "/relationships/", skip=2, delay=0.5)
    klaviyo.inject("429", "/api/profile-bulk-import-jobs/", skip=1, retry_after="0")
    klaviyo.inject("500", "/api/profile-bulk-import-jobs/", skip=3)
    # WHEN the connector is activated
    _create(api, account, klaviyo, segment, identifier="external_id")
    stack.bus.drain()
    # THEN every member is on the list and no list call carried more than 1000 profiles
    assert klaviyo.members(by="external_id") == set(members)
    list_calls = klaviyo.calls("/relationships/", "POST")
    assert len(list_calls) >= 3
    assert all(len(c.body["data"]) <= 1000 for c in list_calls)
    assert klaviyo.calls("/api/profiles/", "GET"), "profiles are looked up in bulk before any upsert"
    jobs = klaviyo.calls("/api/profile-bulk-import-jobs/", "POST")
    assert len(jobs) == 3, "2,300 new profiles are created by three bulk import jobs, not one call each"
    assert not klaviyo.calls("/api/profile-import/")
    assert not klaviyo.violations


def test_failure_beyond_retries_is_dead_lettered_then_a_full_resync_repairs(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, klaviyo: FakeKlaviyo
) -> None:
    # GIVEN an active, synced connector
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, [f"u{i}" for i in range(5)])
    connector = _create(api, account, klaviyo, segment, identifier="external_id")
    stack.bus.drain()
    # WHEN the list endpoint keeps failing for longer than the retry budget during the next diff
    klaviyo.inject("500", "/relationships/", times=4)
    change = membership.compute(tenant, segment, [f"u{i}" for i in range(3, 8)])
    membership.publish(change)
    stack.bus.drain()
    # THEN the sync is recorded with failures, an error summary and a dead-letter object
    sync = api.get(f"/api/connectors/{connector['id']}/syncs/", headers=account.bearer).get_json()["results"][0]
    assert sync["status"] == "partial" and sync["failed"] == 3 and sync["added"] == 3
    assert "500" in sync["error_summary"][0]
    assert stack.runtime.objects.exists(sync["dead_letter"])
    dead = stack.runtime.objects.open(sync["dead_letter"]).read().decode()
    assert '"remove"' in dead and "u0" in dead
    # WHEN an admin asks for a full resync
    queued = api.post(f"/api/connectors/{connector['id']}/sync/", headers=account.bearer)
    assert queued.status_code == 202 and queued.get_json()["status"] == "queued"
    stack.bus.drain()
    # THEN the list equals the membership again: the failed removals were retried from the ledger
    assert klaviyo.members(by="external_id") == {f"u{i}" for i in range(3, 8)}
    latest = api.get(f"/api/connectors/{connector['id']}/syncs/", headers=account.bearer).get_json()["results"][0]
    assert (latest["kind"], latest["status"], latest["removed"], latest["added"]) == ("full", "succeeded", 3, 5)


def test_users_a_partial_sync_failed_are_retried_by_the_next_sync(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, klaviyo: FakeKlaviyo
) -> None:
    # GIVEN an active, synced connector whose next diff failed for three removals beyond retries
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, [f"u{i}" for i in range(5)])
    connector = _create(api, account, klaviyo, segment, identifier="external_id")
    stack.bus.drain()
    klaviyo.inject("500", "/relationships/", times=4)
    membership.publish(membership.compute(tenant, segment, [f"u{i}" for i in range(3, 8)]))
    stack.bus.drain()
    syncs = f"/api/connectors/{connector['id']}/syncs/"
    partial = api.get(syncs, headers=account.bearer).get_json()["results"][0]
    assert (partial["status"], partial["failed"], partial["added"]) == ("partial", 3, 3)
    assert klaviyo.members(by="external_id") == {f"u{i}" for i in range(8)}
    # AND meanwhile u1 came back into the segment: its failed removal must not be replayed blindly
    # WHEN the next compute is pushed (u8 enters, u1 re-enters), with the platform healthy again
    membership.publish(membership.compute(tenant, segment, ["u1", *[f"u{i}" for i in range(3, 9)]]))
    stack.bus.drain()
    # THEN the list equals the membership: u0 and u2 removed now, u1 kept, u8 added
    assert klaviyo.members(by="external_id") == {"u1", *[f"u{i}" for i in range(3, 9)]}
    latest = api.get(syncs, headers=account.bearer).get_json()["results"][0]
    assert (latest["kind"], latest["status"], latest["failed"]) == ("incremental", "succeeded", 0)
    assert (latest["removed"], latest["added"]) == (2, 2)
    # AND nothing is left to retry: a further sync pushes only its own diff
    membership.publish(membership.compute(tenant, segment, ["u1", *[f"u{i}" for i in range(3, 10)]]))
    stack.bus.drain()
    last = api.get(syncs, headers=account.bearer).get_json()["results"][0]
    assert (last["status"], last["removed"], last["added"]) == ("succeeded", 0, 1)
    assert not klaviyo.violations
    # AND the connector's syncs are numbered in its own sequence, which leaves with it
    assert [s["id"] for s in api.get(syncs, headers=account.bearer).get_json()["results"]] == [4, 3, 2, 1]
    backlog = keys.connector_retries_key(tenant, int(str(connector["id"])))
    sequence = keys.counter_key(keys.connector_sync_sequence(tenant, int(str(connector["id"]))))
    assert stack.runtime.store.get(backlog) is not None and stack.runtime.store.get(sequence) is not None
    assert api.delete(f"/api/connectors/{connector['id']}/", headers=account.bearer).status_code == 204
    assert stack.runtime.store.get(backlog) is None and stack.runtime.store.get(sequence) is None


def test_secrets_never_leave_in_responses_logs_or_records(
    stack: LocalStack,
    api: Api,
    account: Account,
    membership: RecordedMembership,
    klaviyo: FakeKlaviyo,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["a", "b"])
    # GIVEN a platform that rejects the key and echoes it back in its error body
    klaviyo.api_key = "something-else"
    connector = _create(api, account, klaviyo, segment, identifier="external_id")
    stack.bus.drain()
    responses = [
        api.get("/api/connectors/", headers=account.bearer),
        api.get(f"/api/connectors/{connector['id']}/", headers=account.bearer),
        api.get(f"/api/connectors/{connector['id']}/syncs/", headers=account.bearer),
        api.patch(f"/api/connectors/{connector['id']}/", {"credentials": {"api_key": API_KEY}}, headers=account.bearer),
    ]
    # THEN the key shows nowhere: responses, logs, sync records, dead letters
    for response in responses:
        assert response.status_code == 200
        assert API_KEY not in response.get_data(as_text=True)
        assert "credentials" not in response.get_json().get("results", [response.get_json()])[0]
    assert connector["credentials_set"] is True
    assert API_KEY not in caplog.text
    sync = responses[2].get_json()["results"][0]
    assert sync["status"] == "failed" and "401" in sync["error_summary"][0]
    assert sync["error_summary"][0].endswith("401 Unauthorized"), "the body (echoing the key) is not kept"
    for key in stack.runtime.objects.list(f"{tenant}/dead-letter/"):
        assert API_KEY not in stack.runtime.objects.open(key).read().decode()
    for key in stack.runtime.store.list(f"tenants/{tenant}/connector-syncs/"):
        assert API_KEY not in str(stack.runtime.store.get(key))


def test_mixed_case_emails_are_matched_as_klaviyo_stores_them(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, klaviyo: FakeKlaviyo
) -> None:
    # GIVEN a member whose email has capitals, synced, whose cached profile id is then lost
    tenant = account.tenant_id
    identify(stack.runtime, tenant, {"m": {"email": "Mixed.Case@Example.com"}})
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["m"])
    connector = _create(api, account, klaviyo, segment)
    stack.bus.drain()
    assert klaviyo.members() == {"mixed.case@example.com"}
    digest = hashlib.sha256(b"Mixed.Case@Example.com").hexdigest()
    stack.runtime.cache.delete(f"connector-profile:{tenant}:{connector['id']}:{digest}")
    # WHEN the member leaves
    membership.publish(membership.compute(tenant, segment, []))
    stack.bus.drain()
    # THEN the lookup found the profile despite the case difference and removed it
    assert klaviyo.members() == set()


def test_a_cached_profile_id_deleted_in_klaviyo_is_resolved_afresh(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, klaviyo: FakeKlaviyo
) -> None:
    # GIVEN a synced member, whose profile is then deleted in Klaviyo (its id stays in SegOps' cache)
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["keep"])
    _create(api, account, klaviyo, segment, identifier="external_id")
    stack.bus.drain()
    with klaviyo.lock:
        gone = next(iter(klaviyo.lists["Y6nRLr"]))
        klaviyo.lists["Y6nRLr"].clear()
        del klaviyo.profiles[gone]
    # WHEN the member leaves and comes back
    membership.publish(membership.compute(tenant, segment, []))
    membership.publish(membership.compute(tenant, segment, ["keep"]))
    stack.bus.drain()
    # THEN the refused stale id was dropped, a new profile created, and the member is on the list
    assert klaviyo.members(by="external_id") == {"keep"}
    assert any(v.reason.startswith("profile") for v in klaviyo.violations), "the stale id was refused once"
