"""The exact requests each platform client sends (what docs/connectors.md documents), checked against
the contract servers, without the rest of the stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segops.cache.memory import MemoryCache
from segops.connectors.braze import BrazeSubscriptionGroup
from segops.connectors.delivery import HttpSync, PlatformError, RetryPolicy
from segops.connectors.klaviyo import KlaviyoList
from segops.connectors.models import BrazeConfig, KlaviyoConfig, TalonOneConfig
from segops.connectors.talonone import TalonOneAudience

from tests.support.log_secrets import watch
from tests.support.platforms import CONTRACT_EGRESS, FakeBraze, FakeKlaviyo, FakePlatform, FakeTalonOne, Recorded, Reply

KEY = "contract-key"
watch(KEY)
POLICY = RetryPolicy(max_attempts=2, backoff_base_seconds=0.001, timeout_seconds=2)


@pytest.fixture
def servers() -> Iterator[list[FakePlatform]]:
    started: list[FakePlatform] = []
    yield started
    for server in started:
        server.stop()


def _start(servers: list[FakePlatform], server: FakePlatform) -> FakePlatform:
    servers.append(server.start())
    return server


def test_klaviyo_requests(servers: list[FakePlatform]) -> None:
    klaviyo = _start(servers, FakeKlaviyo(KEY))
    assert isinstance(klaviyo, FakeKlaviyo)
    config = KlaviyoConfig(list_id="Y6nRLr", base_url=klaviyo.url)
    client = KlaviyoList(config, KEY, HttpSync(POLICY, CONTRACT_EGRESS), MemoryCache(), "t:1")
    client.add(["a@x.com", "b@x.com"])
    lookup, create_a, create_b, relate = klaviyo.requests
    assert create_b.body["data"]["attributes"] == {"email": "b@x.com"}
    for request in klaviyo.requests:
        assert request.headers["authorization"] == f"Klaviyo-API-Key {KEY}"
        assert request.headers["revision"] == "2026-01-15"
        assert request.headers["accept"] == "application/vnd.api+json"
    assert (lookup.method, lookup.path) == ("GET", "/api/profiles/")
    assert lookup.query["filter"] == ['any(email,["a@x.com","b@x.com"])']
    assert lookup.query["page[size]"] == ["100"]
    assert (create_a.method, create_a.path, create_a.status) == ("POST", "/api/profile-import/", 201)
    assert create_a.body == {"data": {"type": "profile", "attributes": {"email": "a@x.com"}}}
    assert create_a.headers["content-type"] == "application/vnd.api+json"
    assert (relate.method, relate.path, relate.status) == ("POST", "/api/lists/Y6nRLr/relationships/profiles/", 204)
    assert relate.body == {"data": [{"type": "profile", "id": p} for p in sorted(klaviyo.profiles)]}
    # WHEN the same profiles are removed THEN the cached ids go straight to the DELETE
    client.remove(["a@x.com", "b@x.com"])
    assert [(r.method, r.path) for r in klaviyo.requests[4:]] == [
        ("DELETE", "/api/lists/Y6nRLr/relationships/profiles/")
    ]
    assert klaviyo.members() == set()


def test_braze_requests(servers: list[FakePlatform]) -> None:
    braze = _start(servers, FakeBraze(KEY))
    config = BrazeConfig(rest_endpoint=braze.url, subscription_group_id="sg-vip")
    client = BrazeSubscriptionGroup(config, KEY, HttpSync(POLICY, CONTRACT_EGRESS))
    client.add(["u1", "u2"])
    client.remove(["u2"])
    add, remove = braze.requests
    assert (add.method, add.path, add.status) == ("POST", "/v2/subscription/status/set", 201)
    assert add.headers["authorization"] == f"Bearer {KEY}"
    assert add.headers["content-type"] == "application/json"
    group = {"subscription_group_id": "sg-vip"}
    assert add.body == {
        "subscription_groups": [{**group, "subscription_state": "subscribed", "external_ids": ["u1", "u2"]}]
    }
    assert remove.body == {
        "subscription_groups": [{**group, "subscription_state": "unsubscribed", "external_ids": ["u2"]}]
    }
    # AND a 51-id batch is refused by the contract (never sent by the engine, which batches by 50)
    with pytest.raises(PlatformError) as raised:
        client.add([f"u{i}" for i in range(51)])
    assert raised.value.status == 400 and len(braze.requests) == 3


def test_talonone_requests(servers: list[FakePlatform]) -> None:
    talonone = _start(servers, FakeTalonOne(KEY))
    assert isinstance(talonone, FakeTalonOne)
    remembered: list[int] = []
    config = TalonOneConfig(base_url=talonone.url, audience_name="Loyal")
    client = TalonOneAudience(
        config, KEY, HttpSync(POLICY, CONTRACT_EGRESS), None, "segops-1-connector-2", remembered.append
    )
    client.add(["p1"])
    client.remove(["p1"])
    create, add, delete = talonone.requests
    assert all(r.headers["authorization"] == f"ApiKey-v1 {KEY}" for r in talonone.requests)
    assert (create.path, create.status, create.body) == (
        "/v2/audiences",
        201,
        {"name": "Loyal", "integrationId": "segops-1-connector-2"},
    )
    audience = remembered[0]
    assert (add.path, add.status) == ("/v2/customer_audiences", 204)
    assert add.body == {"data": [{"action": "add", "profileIntegrationId": "p1", "audienceId": audience}]}
    assert delete.body == {"data": [{"action": "delete", "profileIntegrationId": "p1", "audienceId": audience}]}
    # AND an existing integration id is a 409 explained in the error summary
    again = TalonOneAudience(
        config, KEY, HttpSync(POLICY, CONTRACT_EGRESS), None, "segops-1-connector-2", remembered.append
    )
    with pytest.raises(PlatformError) as raised:
        again.add(["p2"])
    assert raised.value.status == 409 and "set config.audience_id" in raised.value.summary


def test_klaviyo_bulk_import_job_for_many_new_profiles(servers: list[FakePlatform]) -> None:
    klaviyo = _start(servers, FakeKlaviyo(KEY))
    assert isinstance(klaviyo, FakeKlaviyo)
    config = KlaviyoConfig(list_id="Y6nRLr", base_url=klaviyo.url, identifier="external_id")
    client = KlaviyoList(config, KEY, HttpSync(POLICY, CONTRACT_EGRESS), MemoryCache(), "t:1", job_poll_seconds=0)
    users = [f"user-{i}" for i in range(60)]
    outcome = client.add([*users, 'we"ird'])
    assert not outcome.failed
    # an id that cannot be quoted in a filter is created on its own instead of by the job
    [single] = klaviyo.calls("/api/profile-import/", "POST")
    assert single.body["data"]["attributes"] == {"external_id": 'we"ird'}
    spawn = klaviyo.calls("/api/profile-bulk-import-jobs/", "POST")[0]
    assert spawn.status == 202
    assert spawn.body["data"]["type"] == "profile-bulk-import-job"
    assert spawn.body["data"]["relationships"] == {"lists": {"data": [{"type": "list", "id": "Y6nRLr"}]}}
    assert spawn.body["data"]["attributes"]["profiles"]["data"][0] == {
        "type": "profile",
        "attributes": {"external_id": "user-0"},
    }
    polls = klaviyo.calls("/api/profile-bulk-import-jobs/job-", "GET")
    assert len(polls) == 2, "polled until the job completed"
    assert klaviyo.members(by="external_id") == {*users, 'we"ird'}


def test_klaviyo_profiles_a_bulk_job_refused_are_failed_individually(servers: list[FakePlatform]) -> None:
    klaviyo = _start(servers, FakeKlaviyo(KEY))
    assert isinstance(klaviyo, FakeKlaviyo)
    config = KlaviyoConfig(list_id="Y6nRLr", base_url=klaviyo.url)
    client = KlaviyoList(config, KEY, HttpSync(POLICY, CONTRACT_EGRESS), MemoryCache(), "t:1", job_poll_seconds=0)
    good = [f"u{i}@shop.test" for i in range(55)]
    bad = [f"b{i}@nodomain" for i in range(5)]
    outcome = client.add(good + bad)
    assert set(outcome.failed) == set(bad)
    assert all("did not create the profile" in e.summary for e in outcome.failed.values())
    assert klaviyo.members() == set(good)


class KlaviyoPagingElsewhere(FakeKlaviyo):
    """Answers profile lookups with a `links.next` on another server (reachable, but not Klaviyo's host)."""

    def __init__(self, api_key: str, elsewhere: str) -> None:
        super().__init__(api_key)
        self.elsewhere = elsewhere

    def _get_profiles(self, request: Recorded) -> Reply:
        status, headers, body = super()._get_profiles(request)
        body["links"]["next"] = f"{self.elsewhere}/api/profiles/?page%5Bcursor%5D=2"
        return status, headers, body


def test_klaviyo_pagination_links_off_the_host_are_not_followed(servers: list[FakePlatform]) -> None:
    # GIVEN a Klaviyo whose next-page link points at another server the egress policy would allow
    other = _start(servers, FakeKlaviyo(KEY))
    klaviyo = _start(servers, KlaviyoPagingElsewhere(KEY, other.url))
    config = KlaviyoConfig(list_id="Y6nRLr", base_url=klaviyo.url)
    client = KlaviyoList(config, KEY, HttpSync(POLICY, CONTRACT_EGRESS), MemoryCache(), "t:1")
    # WHEN profiles are looked up THEN the batch fails and the other server never sees the API key
    with pytest.raises(PlatformError, match="pagination link leaves the Klaviyo host"):
        client.add(["a@x.com"])
    assert other.requests == []
