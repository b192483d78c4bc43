"""Every `<int:…>` path id is a positive 64-bit integer: anything else names no resource (404), never a 500."""

from __future__ import annotations

import re

import pytest
from segops.catalog import HTTP_FUNCTIONS, routers
from segops.ids import ID_MAX
from segops.localstack import LocalStack

from tests.support.api import Api, assert_error

INT_ROUTES = sorted(
    {
        (
            route.method,
            route.path,
            route.auth,
            # required query parameters get a valid value, so only the path id is in question
            "&".join(
                f"{name}=1"
                for name, field in (route.query.model_fields if route.query else {}).items()
                if field.is_required()
            ),
        )
        for function in HTTP_FUNCTIONS
        for router in routers(function)
        for route in router.routes
        if "<int:" in route.path
    }
)
_INT_PARAM = re.compile(r"<int:\w+>")


def test_the_fuzzer_findings_are_404(stack: LocalStack) -> None:
    # GIVEN a tenant and its credentials
    api = Api(stack)
    account = api.signup()
    for path in (
        "/api/segments/66179563671149764489660373372239872/compute/",
        "/api/segments/exports/2029581414372542089527296/download/",
    ):
        # WHEN an id past 64 bits is asked for THEN it is not found, with the one error shape
        assert_error(api.get(path, headers=account.key), 404, "not_found")
        assert_error(api.get(path, headers=account.bearer), 404, "not_found")


@pytest.mark.parametrize("value", ["0", str(ID_MAX + 1), str(2**64), "9" * 40])
def test_ids_out_of_range_match_no_route(stack: LocalStack, value: str) -> None:
    api = Api(stack)
    account = api.signup()
    assert INT_ROUTES, "routes with integer ids exist"
    for method, path, auth, _ in INT_ROUTES:
        headers = account.bearer if "jwt" in auth else account.key
        response = api.request(
            method, _INT_PARAM.sub(value, path), json={} if method != "GET" else None, headers=headers
        )
        assert_error(response, 404, "not_found")


def test_the_largest_id_reaches_the_handler_and_is_not_found(stack: LocalStack) -> None:
    # GIVEN the largest id the converter accepts, in the caller's own tenant where the path names one
    api = Api(stack)
    account = api.signup()
    for method, path, auth, query in INT_ROUTES:
        if method not in ("GET", "DELETE"):
            continue
        concrete = path.replace("<int:tenant_id>", str(account.tenant_id))
        if "<int:" not in concrete:
            continue
        headers = account.bearer if "jwt" in auth else account.key
        response = api.request(method, _INT_PARAM.sub(str(ID_MAX), concrete), headers=headers, query_string=query)
        # THEN the handler looked it up: not found (never an overflow further down)
        assert response.status_code == 404, (method, path, response.status_code)
        assert_error(response, 404, "not_found")


def test_ids_in_query_and_body_are_bounded_too(stack: LocalStack) -> None:
    # GIVEN a tenant with a segment
    api = Api(stack)
    account = api.signup()
    segment = api.post("/api/segments/", {"name": "s"}, headers=account.bearer).get_json()["id"]
    huge = "1869900822500949836967173947392"  # a fuzzer's find: it once crashed rendering its own 404
    # WHEN an id past 64 bits comes in the query or the body THEN it is refused as invalid input
    response = api.get(f"/api/segments/{segment}/export/?export_id={huge}", headers=account.bearer)
    assert assert_error(response, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/query/export_id"
    body = f'{{"name": "f", "type": "file", "segment_id": {huge}, "config": {{}}}}'.encode()
    response = api.post("/api/connectors/", data=body, content_type="application/json", headers=account.bearer)
    assert assert_error(response, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/segment_id"
