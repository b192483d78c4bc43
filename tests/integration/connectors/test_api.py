"""The connector resource: validation, roles, tenancy, write-only credentials, history pagination."""

from __future__ import annotations

import pytest
from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error
from tests.support.membership import RecordedMembership


def _klaviyo(segment: int, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "VIP",
        "type": "klaviyo",
        "segment_id": segment,
        "config": {"list_id": "Y6nRLr", "base_url": "http://127.0.0.1:9"},
        "credentials": {"api_key": "pk_secret_value_123"},
    }
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("override", "pointer"),
    [
        ({"type": "mailchimp"}, "/type"),
        ({"config": {"base_url": "http://127.0.0.1:9"}}, "/config/list_id"),
        ({"config": {"list_id": "Y6nRLr", "identifier": "phone"}}, "/config/identifier"),
        ({"config": {"list_id": "Y6nRLr", "api_key": "pk_in_config"}}, "/config/api_key"),
        ({"segment_id": 999}, "/segment_id"),
        ({"active": True, "credentials": None}, "/credentials/api_key"),
        ({"type": "talonone", "config": {"base_url": "https://x.talon.one"}}, "/config/audience_id"),
        (
            {"type": "braze", "config": {"rest_endpoint": "not a url", "subscription_group_id": "g"}},
            "/config/rest_endpoint",
        ),
        ({"type": "file", "config": {"format": "xlsx"}}, "/config/format"),
        ({"config": {"list_id": "L", "base_url": "http://169.254.169.254/"}}, "/config/base_url"),
        ({"config": {"list_id": "L", "base_url": "http://metadata.google.internal"}}, "/config/base_url"),
    ],
)
def test_invalid_connectors_are_400_with_a_pointer(
    api: Api, account: Account, membership: RecordedMembership, override: dict[str, object], pointer: str
) -> None:
    segment = membership.segment(account.tenant_id)
    error = assert_error(api.post("/api/connectors/", _klaviyo(segment, **override), headers=account.bearer), 400)
    assert pointer in [e["pointer"] for e in error["details"]["errors"]], error


def test_crud_with_write_only_credentials(api: Api, account: Account, membership: RecordedMembership) -> None:
    segment = membership.segment(account.tenant_id)
    # WHEN a connector is created inactive
    created = api.post("/api/connectors/", _klaviyo(segment), headers=account.bearer)
    # THEN it shows its config with defaults, `credentials_set`, and never the secret
    assert created.status_code == 201
    body = created.get_json()
    assert body["credentials_set"] is True and "credentials" not in body
    assert "pk_secret_value_123" not in created.get_data(as_text=True)
    assert body["config"] == {
        "list_id": "Y6nRLr",
        "identifier": "email",
        "base_url": "http://127.0.0.1:9/",
        "revision": "2026-01-15",
    }
    assert (body["tenant"], body["active"], body["last_sync"]) == (account.tenant_id, False, None)
    path = f"/api/connectors/{body['id']}/"
    # WHEN the config is patched partially
    patched = api.patch(path, {"config": {"identifier": "external_id"}, "name": "Renamed"}, headers=account.bearer)
    # THEN it is merged and re-validated
    assert patched.status_code == 200
    assert patched.get_json()["config"]["identifier"] == "external_id"
    assert patched.get_json()["config"]["list_id"] == "Y6nRLr"
    assert patched.get_json()["name"] == "Renamed"
    assert_error(api.patch(path, {"config": {"identifier": "sms"}}, headers=account.bearer), 400, "validation_failed")
    assert_error(api.patch(path, {"credentials": None}, headers=account.bearer), 400, "validation_failed")
    assert_error(api.patch(path, {"type": "braze"}, headers=account.bearer), 400, "validation_failed")
    # AND a full sync of an inactive connector is a conflict
    assert_error(api.post(f"{path}sync/", headers=account.bearer), 409, "conflict")
    listed = api.get("/api/connectors/", headers=account.bearer).get_json()
    assert [c["id"] for c in listed["results"]] == [body["id"]] and listed["next_cursor"] is None
    second = api.post("/api/connectors/", _klaviyo(segment), headers=account.bearer).get_json()["id"]
    first_page = api.get("/api/connectors/?limit=1", headers=account.bearer).get_json()
    assert [c["id"] for c in first_page["results"]] == [body["id"]]
    cursor = first_page["next_cursor"]
    second_page = api.get(f"/api/connectors/?limit=1&cursor={cursor}", headers=account.bearer).get_json()
    assert ([c["id"] for c in second_page["results"]], second_page["next_cursor"]) == ([second], None)
    # WHEN it is deleted THEN it is gone
    assert api.delete(path, headers=account.bearer).status_code == 204
    assert_error(api.get(path, headers=account.bearer), 404, "not_found")
    assert_error(api.delete(path, headers=account.bearer), 404, "not_found")


def test_roles_auth_and_tenant_isolation(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership
) -> None:
    segment = membership.segment(account.tenant_id)
    connector = api.post("/api/connectors/", _klaviyo(segment), headers=account.bearer).get_json()["id"]
    other = api.signup()
    # THEN another tenant cannot see it (404, not 403), API keys are refused, members are forbidden
    assert_error(api.get(f"/api/connectors/{connector}/", headers=other.bearer), 404)
    assert_error(api.get(f"/api/connectors/{connector}/syncs/", headers=other.bearer), 404)
    assert api.get("/api/connectors/", headers=other.bearer).get_json()["results"] == []
    assert_error(api.get("/api/connectors/", headers=account.key), 401)
    as_member = api.add_member(account, other, "member")
    assert_error(api.get("/api/connectors/", headers=as_member), 403, "forbidden")


def test_sync_history_is_newest_first_with_cursor_pagination(
    stack: LocalStack, api: Api, account: Account, membership: RecordedMembership
) -> None:
    tenant = account.tenant_id
    segment = membership.segment(tenant)
    membership.compute(tenant, segment, ["a"])
    created = api.post(
        "/api/connectors/",
        {"name": "f", "type": "file", "segment_id": segment, "active": True, "config": {}},
        headers=account.bearer,
    ).get_json()
    for _ in range(4):
        assert api.post(f"/api/connectors/{created['id']}/sync/", headers=account.bearer).status_code == 202
    stack.bus.drain()
    seen: list[int] = []
    cursor = None
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = api.get(f"/api/connectors/{created['id']}/syncs/{query}", headers=account.bearer).get_json()
        seen.extend(s["id"] for s in page["results"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert all(s == "succeeded" for s in [r["status"] for r in page["results"]])
    assert_error(api.get(f"/api/connectors/{created['id']}/syncs/?cursor=%%%", headers=account.bearer), 400)
    # AND a sync-history cursor is bound to its connector and its list
    cursor = api.get(f"/api/connectors/{created['id']}/syncs/?limit=1", headers=account.bearer).get_json()[
        "next_cursor"
    ]
    other = api.post(
        "/api/connectors/",
        {"name": "g", "type": "file", "segment_id": segment, "active": False, "config": {}},
        headers=account.bearer,
    ).get_json()["id"]
    foreign = api.get(f"/api/connectors/{other}/syncs/?cursor={cursor}", headers=account.bearer)
    assert assert_error(foreign, 400)["details"]["errors"][0]["pointer"] == "/query/cursor"
    assert_error(api.get(f"/api/connectors/?cursor={cursor}", headers=account.bearer), 400)
    got = api.get(f"/api/connectors/{created['id']}/", headers=account.bearer).get_json()
    assert got["last_sync"]["id"] == seen[0]


def test_openapi_documents_the_connector_endpoints(api: Api) -> None:
    document = api.get("/api/openapi.json").get_json()
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/connectors/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/connectors/{connector_id}/"])
    assert "get" in paths["/api/connectors/{connector_id}/syncs/"]
    assert "post" in paths["/api/connectors/{connector_id}/sync/"]
    assert "api_key" not in str(document["components"]["schemas"]["ConnectorOut"])
