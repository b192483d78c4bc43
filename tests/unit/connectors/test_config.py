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


def test_production_requires_https_endpoints() -> None:
    config: dict[str, Any] = {"rest_endpoint": "http://rest.iad-01.braze.com", "subscription_group_id": "g"}
    with pytest.raises(ValidationFailed) as raised:
        validate_config(_runtime("production"), "braze", config)
    assert raised.value.details["errors"][0]["pointer"] == "/config/rest_endpoint"
    assert validate_config(_runtime("dev"), "braze", config)["rest_endpoint"] == "http://rest.iad-01.braze.com/"
    secure = {**config, "rest_endpoint": "https://rest.iad-01.braze.com"}
    assert validate_config(_runtime("production"), "braze", secure)["identifier"] == "external_id"
