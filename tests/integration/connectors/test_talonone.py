"""Talon.One audience sync through the whole stack against the contract server."""

from __future__ import annotations

from segops.localstack import LocalStack

from tests.integration.connectors.conftest import API_KEY
from tests.support.api import Account, Api
from tests.support.membership import RecordedMembership, identify
from tests.support.platforms import Audience, FakeTalonOne


def _create(api: Api, account: Account, talonone: FakeTalonOne, segment_id: int, **config: object) -> int:
    response = api.post(
        "/api/connectors/",
        {
            "name": "Loyal customers",
            "type": "talonone",
            "segment_id": segment_id,
            "active": True,
            "config": {"base_url": talonone.url, **config},
            "credentials": {"api_key": API_KEY},
        },
        headers=account.bearer,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    connector_id: int = response.get_json()["id"]
    return connector_id


def test_audience_created_by_name_once_and_kept_equal_to_membership(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, talonone: FakeTalonOne
) -> None:
    # GIVEN 2,100 members (three calls of ≤ 1000 actions) and a mid-batch failure
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    members = [f"cust-{i}" for i in range(2100)]
    membership.compute(tenant, segment, members)
    talonone.inject("500", "/v2/customer_audiences", skip=1)
    talonone.inject("429", "/v2/customer_audiences", skip=2, retry_after="0")
    # WHEN the connector is created with an audience name
    connector = _create(api, account, talonone, segment, audience_name="Loyal")
    stack.bus.drain()
    # THEN one audience exists, holding every member
    assert len(talonone.audiences) == 1
    audience = next(iter(talonone.audiences.values()))
    assert audience.name == "Loyal" and audience.integration_id == f"segops-{tenant}-connector-{connector}"
    assert talonone.members(audience.id) == set(members)
    assert all(len(c.body["data"]) <= 1000 for c in talonone.calls("/v2/customer_audiences"))

    # WHEN diffs arrive, one of them twice, and a manual full resync runs
    first = membership.compute(tenant, segment, members[:1500])
    second = membership.compute(tenant, segment, [*members[:1400], "cust-x"])
    for message in (first, second, first, second):
        membership.publish(message)
    stack.bus.drain()
    assert api.post(f"/api/connectors/{connector}/sync/", headers=account.bearer).status_code == 202
    stack.bus.drain()
    # THEN the same audience (never re-created) equals the membership
    assert len(talonone.audiences) == 1
    assert talonone.members(audience.id) == {*members[:1400], "cust-x"}
    assert not talonone.violations


def test_profile_ids_from_a_user_property_and_a_given_audience_id(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, talonone: FakeTalonOne
) -> None:
    # GIVEN an existing audience and users whose Talon.One integration id is a property
    talonone.audiences[42] = Audience(42, "Existing", None)
    tenant = account.tenant_id
    identify(
        stack.runtime,
        tenant,
        {"u1": {"crm": {"id": "CRM-1"}}, "u2": {"crm": {"id": 2002}}, "u3": {"crm": {}}, "u4": {"crm.id": "no"}},
    )
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["u1", "u2", "u3", "u4"])
    # WHEN the connector syncs with profile_id_from=crm.id (a nested property)
    _create(api, account, talonone, segment, audience_id=42, profile_id_from="crm.id")
    stack.bus.drain()
    # THEN the audience holds the property values; the users without one are skipped
    assert talonone.members(42) == {"CRM-1", "2002"}
    assert len(talonone.audiences) == 1
