"""Publishable keys (`pk_live_`): created through the keys API with allowed origins, accepted only by
the ingestion endpoints (native and Segment-compatible) and only from those origins; CORS is answered
on those endpoints only, echoing the page's origin, never `*`."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from segops.localstack import LocalStack
from segops.store import keys

from tests.support.api import Account, Api, assert_error
from tests.support.ingestion import stored_events

SHOP = "https://shop.example.com"
ELSEWHERE = "https://evil.example.net"
TRACK = "/api/ingestion/track/"
EVENT = {"user_id": "u1", "event_type": "page_viewed"}


@pytest.fixture
def publishable(api: Api, account: Account) -> dict[str, Any]:
    response = api.post(
        "/api/keys/",
        {"name": "web", "kind": "publishable", "allowed_origins": [SHOP.upper(), "http://localhost:3000"]},
        headers=account.bearer,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _pk(key: dict[str, Any], origin: str | None = SHOP) -> dict[str, str]:
    headers = {"Authorization": f"ApiKey {key['key']}"}
    return headers | ({"Origin": origin} if origin else {})


def test_a_publishable_key_is_created_with_its_normalised_origins(
    publishable: dict[str, Any], api: Api, account: Account
) -> None:
    assert publishable["key"].startswith("pk_live_")
    assert (publishable["kind"], publishable["role"]) == ("publishable", "member")
    assert publishable["allowed_origins"] == ["http://localhost:3000", SHOP]
    listed = api.get("/api/keys/", headers=account.bearer).get_json()["results"]
    assert {k["kind"] for k in listed} == {"secret", "publishable"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "w", "kind": "publishable"},
        {"name": "w", "kind": "publishable", "allowed_origins": []},
        {"name": "w", "kind": "publishable", "role": "admin", "allowed_origins": [SHOP]},
        {"name": "w", "kind": "publishable", "allowed_origins": ["https://shop.example.com/checkout"]},
        {"name": "w", "kind": "publishable", "allowed_origins": ["*"]},
        {"name": "w", "kind": "publishable", "allowed_origins": ["ftp://shop.example.com"]},
        {"name": "w", "kind": "publishable", "allowed_origins": ["https://shop.example.com:99999"]},
        {"name": "w", "kind": "publishable", "allowed_origins": ["https://shop.example.com:0"]},
        {"name": "w", "allowed_origins": [SHOP]},
        {"name": "w", "kind": "public"},
    ],
)
def test_invalid_publishable_key_requests_are_refused(api: Api, account: Account, body: dict[str, Any]) -> None:
    assert_error(api.post("/api/keys/", body, headers=account.bearer), 400)


def test_events_from_an_allowed_origin_are_accepted_and_readable(
    api: Api, stack: LocalStack, account: Account, publishable: dict[str, Any]
) -> None:
    # native single and batch, and the Segment-compatible endpoint (key as the Basic user)
    native = api.post(TRACK, EVENT, headers=_pk(publishable))
    batch = api.post(
        "/api/ingestion/track/batch/", {"events": [EVENT]}, headers=_pk(publishable, "http://localhost:3000")
    )
    basic = base64.b64encode(f"{publishable['key']}:".encode()).decode()
    segment = api.post(
        "/v1/track", {"userId": "u2", "event": "Viewed"}, headers={"Authorization": f"Basic {basic}", "Origin": SHOP}
    )
    assert (native.status_code, batch.status_code, segment.status_code) == (202, 202, 200)
    assert native.headers["Access-Control-Allow-Origin"] == SHOP
    assert batch.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert segment.headers["Access-Control-Allow-Origin"] == SHOP
    assert all("Origin" in r.headers.get("Vary", "") for r in (native, batch, segment))
    assert all("Access-Control-Allow-Credentials" not in r.headers for r in (native, batch, segment))
    # a refused event is still readable by the page (same key, same origin)
    refused = api.post(TRACK, {"user_id": ""}, headers=_pk(publishable))
    assert refused.status_code == 400 and refused.headers["Access-Control-Allow-Origin"] == SHOP
    stack.bus.drain()
    assert sorted(r["user_id"] for r in stored_events(stack, account.tenant_id)) == ["u1", "u1", "u2"]


@pytest.mark.parametrize("origin", [ELSEWHERE, "https://shop.example.com.evil.net", "null", None])
def test_other_origins_and_no_origin_are_refused_without_cors(
    api: Api, stack: LocalStack, account: Account, publishable: dict[str, Any], origin: str | None
) -> None:
    response = api.post(TRACK, EVENT, headers=_pk(publishable, origin))
    assert_error(response, 403)
    assert "Access-Control-Allow-Origin" not in response.headers
    stack.bus.drain()
    assert stored_events(stack, account.tenant_id) == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/ingestion/stats/", None),
        ("GET", "/api/ingestion/errors/", None),
        ("GET", "/api/segments/", None),
        ("POST", "/api/segments/preview/", {"definition": {}}),
        ("GET", "/api/segments/membership/?user_id=u1", None),
        ("POST", "/api/explorer/sandbox/publish/", EVENT),
        ("POST", "/api/segments/", {"name": "all"}),
        ("GET", "/api/segments/1/members/", None),
    ],
)
def test_every_other_endpoint_refuses_a_publishable_key(
    api: Api, publishable: dict[str, Any], method: str, path: str, body: Any
) -> None:
    response = api.request(method, path, json=body, headers=_pk(publishable))
    error = assert_error(response, 403)
    assert "publishable" in error["message"]
    assert "Access-Control-Allow-Origin" not in response.headers


def test_key_management_never_takes_an_api_key_at_all(api: Api, publishable: dict[str, Any]) -> None:
    assert_error(api.get("/api/keys/", headers=_pk(publishable)), 401)


def test_preflight_is_answered_on_ingestion_endpoints_only(api: Api) -> None:
    preflight = {
        "Origin": SHOP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    for path in (TRACK, "/api/ingestion/track/batch/", "/v1/batch", "/v1/page"):
        response = api.request("OPTIONS", path, headers=preflight)
        assert response.status_code == 204, path
        assert response.headers["Access-Control-Allow-Origin"] == SHOP
        assert response.headers["Access-Control-Allow-Methods"] == "POST"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in response.headers
    for path in ("/api/ingestion/stats/", "/api/segments/", "/api/keys/"):
        response = api.request("OPTIONS", path, headers=preflight)
        assert response.status_code == 405 and "Access-Control-Allow-Origin" not in response.headers, path


def test_a_secret_key_is_never_readable_cross_origin(api: Api, account: Account) -> None:
    response = api.post(TRACK, EVENT, headers=account.key | {"Origin": SHOP})
    assert response.status_code == 202 and "Access-Control-Allow-Origin" not in response.headers


def test_a_default_port_is_left_out_as_browsers_leave_it_out(api: Api, account: Account) -> None:
    # GIVEN origins written with their scheme's default port (a page's Origin never carries it)
    origins = ["https://shop.example.com:443", "http://shop.example.com:80", "https://shop.example.com:8443"]
    body = {"name": "w", "kind": "publishable", "allowed_origins": origins}
    created = api.post("/api/keys/", body, headers=account.bearer).get_json()
    # THEN they are stored as a browser sends them, and a page on the default port is allowed
    assert created["allowed_origins"] == [
        "http://shop.example.com",
        "https://shop.example.com",
        "https://shop.example.com:8443",
    ]
    event = {"user_id": "o", "event_type": "page_viewed"}
    headers = {"Authorization": f"ApiKey {created['key']}", "Origin": "https://shop.example.com"}
    response = api.post("/api/ingestion/track/", event, headers=headers)
    assert response.status_code == 202 and response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"


def test_a_key_stored_with_a_default_port_matches_the_origin_browsers_send(
    api: Api, stack: LocalStack, account: Account, publishable: dict[str, Any]
) -> None:
    # GIVEN a key stored before origins were normalised, holding `https://shop.example.com:443`
    key = keys.api_key_key(account.tenant_id, publishable["id"])
    document = stack.runtime.store.get(key)
    assert document is not None and sorted(document.body["allowed_origins"]) == ["http://localhost:3000", SHOP]
    stored = {**document.body, "allowed_origins": [f"{SHOP}:443"]}
    stack.runtime.store.put(key, stored, if_generation=document.generation)
    # WHEN a page of that origin sends (browsers leave the default port out) THEN it is accepted
    assert api.post(TRACK, EVENT, headers=_pk(publishable)).status_code == 202
