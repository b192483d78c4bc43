"""Braze subscription-group sync through the whole stack against the contract server."""

from __future__ import annotations

from segops.localstack import LocalStack

from tests.integration.connectors.conftest import create_braze_connector
from tests.support.api import Account, Api
from tests.support.membership import RecordedMembership, identify
from tests.support.platforms import FakeBraze


def test_external_ids_in_batches_of_50_with_faults_redelivery_and_deactivation(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, braze: FakeBraze
) -> None:
    # GIVEN a 120-member segment and a platform that throttles and fails once each
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    members = [f"ext-{i:03d}" for i in range(120)]
    membership.compute(tenant, segment, members)
    braze.inject("429", "/v2/subscription/status/set", retry_after=None)
    braze.inject("500", "/v2/subscription/status/set", skip=1)
    braze.inject("timeout", "/v2/subscription/status/set", skip=2, delay=0.5)
    # WHEN the connector is created active
    connector = create_braze_connector(api, account, braze, segment, "external_id")
    stack.bus.drain()
    # THEN everyone is subscribed, every call held at most 50 ids
    assert braze.subscribed() == set(members)
    calls = braze.calls("/v2/subscription/status/set")
    assert all(len(c.body["subscription_groups"][0]["external_ids"]) <= 50 for c in calls)
    assert len(calls) >= 3

    # WHEN members leave and join, and the message is delivered twice
    change = membership.compute(tenant, segment, [*members[10:], "ext-new"])
    membership.publish(change)
    membership.publish(change)
    stack.bus.drain()
    # THEN the subscribed set equals the membership
    assert braze.subscribed() == {*members[10:], "ext-new"}

    # WHEN the connector is deactivated, users leave, and it is activated again
    assert api.patch(f"/api/connectors/{connector}/", {"active": False}, headers=account.bearer).status_code == 200
    membership.publish(membership.compute(tenant, segment, members[50:]))
    stack.bus.drain()
    assert braze.subscribed() == {*members[10:], "ext-new"}, "an inactive connector pushes nothing"
    assert api.patch(f"/api/connectors/{connector}/", {"active": True}, headers=account.bearer).status_code == 200
    stack.bus.drain()
    # THEN the activation's full sync unsubscribed those who left meanwhile
    assert braze.subscribed() == set(members[50:])
    assert not braze.violations


def test_email_identifier_skips_users_without_a_usable_email(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, braze: FakeBraze
) -> None:
    # GIVEN members with an email, without one, and with a malformed one
    tenant = account.tenant_id
    identify(stack.runtime, tenant, {"a": {"email": "a@example.com"}, "b": {"email": "not-an-email"}, "c": {}})
    identify(stack.runtime, tenant, {"d": {"email": "d@example.com", "plan": "pro"}})
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["a", "b", "c", "d", "never-identified"])
    # WHEN the connector syncs by email
    connector = create_braze_connector(api, account, braze, segment, "email")
    stack.bus.drain()
    # THEN only the usable emails were sent, and the others are counted with their reason
    assert braze.subscribed() == {"a@example.com", "d@example.com"}
    assert all("emails" in c.body["subscription_groups"][0] for c in braze.calls("/v2/"))
    sync = api.get(f"/api/connectors/{connector}/syncs/", headers=account.bearer).get_json()["results"][0]
    assert (sync["added"], sync["skipped"]) == (2, 3)
    assert sync["skip_reasons"] == {"no email user property": 2, "invalid email user property": 1}
