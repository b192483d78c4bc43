from __future__ import annotations

from collections.abc import Iterator

import pytest
from segops.config import Settings
from segops.localstack import LocalStack

from tests.support.api import Account, Api
from tests.support.log_secrets import watch
from tests.support.membership import RecordedMembership
from tests.support.platforms import CONTRACT_EGRESS_SETTINGS, FakeBraze, FakeKlaviyo, FakeTalonOne

API_KEY = "pk_live_SECRET_do_not_leak_4b1d"


def create_braze_connector(
    api: Api, account: Account, braze: FakeBraze, segment_id: int, identifier: str | None = None
) -> int:
    """An active Braze connector of `segment_id` pushing to the contract server's sg-vip group; its id."""
    config = {"rest_endpoint": braze.url, "subscription_group_id": "sg-vip"}
    if identifier is not None:
        config["identifier"] = identifier
    response = api.post(
        "/api/connectors/",
        {
            "name": "VIP group",
            "type": "braze",
            "segment_id": segment_id,
            "active": True,
            "config": config,
            "credentials": {"api_key": API_KEY},
        },
        headers=account.bearer,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    connector_id: int = response.get_json()["id"]
    return connector_id


watch(API_KEY)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Tiny backoff and timeouts so injected faults cost milliseconds; the loopback contract servers are
    an operator-added host and a test-only network (every other egress check still runs)."""
    return settings.model_copy(
        update={
            "connector_max_attempts": 4,
            "connector_backoff_base_seconds": 0.001,
            "connector_backoff_max_seconds": 0.01,
            "connector_timeout_seconds": 0.3,
            "connector_max_wait_seconds": 0.05,
            "connector_job_poll_seconds": 0.01,
            "connector_job_timeout_seconds": 2.0,
            **CONTRACT_EGRESS_SETTINGS,
        }
    )


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


@pytest.fixture
def account(api: Api) -> Account:
    return api.signup()


@pytest.fixture
def membership(stack: LocalStack) -> RecordedMembership:
    return RecordedMembership(stack.runtime)


@pytest.fixture
def klaviyo() -> Iterator[FakeKlaviyo]:
    server = FakeKlaviyo(API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def braze() -> Iterator[FakeBraze]:
    server = FakeBraze(API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def talonone() -> Iterator[FakeTalonOne]:
    server = FakeTalonOne(API_KEY).start()
    yield server
    server.stop()
