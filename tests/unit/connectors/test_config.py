"""Connector config validation that depends on the deployment, not on a request."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from segops.config import Settings
from segops.connectors.service import validate_config
from segops.errors import ValidationFailed
from segops.runtime import Runtime


def _runtime(environment: str) -> Runtime:
    return cast(Runtime, SimpleNamespace(settings=Settings(environment=environment)))


@pytest.mark.parametrize("environment", ["dev", "test", "production"])
def test_endpoints_are_https_on_documented_hosts_in_every_environment(environment: str) -> None:
    config: dict[str, Any] = {"rest_endpoint": "http://rest.iad-01.braze.com", "subscription_group_id": "g"}
    with pytest.raises(ValidationFailed) as raised:
        validate_config(_runtime(environment), "braze", config)
    assert raised.value.details["errors"][0]["pointer"] == "/config/rest_endpoint"
    secure = {**config, "rest_endpoint": "https://rest.iad-01.braze.com"}
    assert validate_config(_runtime(environment), "braze", secure)["identifier"] == "external_id"


def test_test_networks_are_refused_in_production() -> None:
    with pytest.raises(ValueError, match="refused in production"):
        Settings(environment="production", connector_test_networks=["127.0.0.0/8"])
