"""SSRF through the whole stack, with the deployment's defaults (no test-network exemption): inward
targets are refused at creation, and a platform name resolving inward fails the sync, recorded briefly."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from segops.config import Settings
from segops.localstack import LocalStack

from tests.integration.connectors.conftest import API_KEY
from tests.support.api import Account, Api, assert_error
from tests.support.membership import RecordedMembership, identify


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"connector_extra_hosts": [], "connector_test_networks": []})


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:9",
        "https://127.0.0.1",
        "https://0.0.0.0",
        "https://[::1]",
        "https://[::ffff:127.0.0.1]",
        "https://10.0.0.5",
        "https://169.254.169.254",
        "http://metadata.google.internal",
        "https://localhost",
        "https://a.klaviyo.com.evil.example",
        "http://a.klaviyo.com",
    ],
)
def test_connector_targets_off_the_platform_hosts_are_400(
    api: Api, account: Account, membership: RecordedMembership, base_url: str
) -> None:
    segment = membership.segment(account.tenant_id)
    body = {"name": "x", "type": "klaviyo", "segment_id": segment, "config": {"list_id": "L", "base_url": base_url}}
    error = assert_error(api.post("/api/connectors/", body, headers=account.bearer), 400, "validation_failed")
    assert [e["pointer"] for e in error["details"]["errors"]] == ["/config/base_url"]


def test_a_platform_name_resolving_to_loopback_fails_the_sync(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DNS answering 127.0.0.1 for Klaviyo's documented host (patched resolver, this test only)
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "a.klaviyo.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    tenant = account.tenant_id
    identify(stack.runtime, tenant, {"u1": {"email": "u1@example.com"}})
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["u1"])
    # WHEN a connector on the default base URL is activated (accepted: the name is a Klaviyo host)
    created = api.post(
        "/api/connectors/",
        {
            "name": "VIP",
            "type": "klaviyo",
            "segment_id": segment,
            "active": True,
            "config": {"list_id": "Y6nRLr"},
            "credentials": {"api_key": API_KEY},
        },
        headers=account.bearer,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    stack.bus.drain()
    # THEN the sync failed at the address check, with a short reason and nothing else
    syncs = api.get(f"/api/connectors/{created.get_json()['id']}/syncs/", headers=account.bearer).get_json()
    [sync] = syncs["results"]
    assert sync["status"] == "failed" and sync["failed"] == 1
    assert sync["error_summary"] == ["GET /api/profiles/: target refused: a.klaviyo.com resolves to a loopback address"]
