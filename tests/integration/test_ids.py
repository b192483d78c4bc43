"""Ids are ASCII digits wherever they are parsed: other scripts' digits are refused, never a 500."""

from __future__ import annotations

import base64

import pytest
from segops.localstack import LocalStack

from tests.support.api import Api, assert_error
from tests.support.segment_api import VISITED, defined_segment


@pytest.mark.parametrize("reference", ["\u00b2", "\u0661", "\uff11", "acme\u00b2"])
def test_non_ascii_tenant_reference_is_400(stack: LocalStack, reference: str) -> None:
    # GIVEN a signed-in owner WHEN `?tenant=` holds non-ASCII digits THEN 400 on /tenant, not a 500 or a lookup
    api = Api(stack)
    owner = api.signup()
    response = api.get("/api/segments/", query_string={"tenant": reference}, headers=owner.bearer)
    body = assert_error(response, 400, "validation_failed")
    assert body["details"]["errors"][0]["pointer"] == "/tenant"
    header = api.get("/api/segments/", headers={**owner.bearer, "X-SegOps-Tenant": reference})
    assert_error(header, 400, "validation_failed")


def test_path_ids_in_other_scripts_do_not_address_objects(stack: LocalStack) -> None:
    # GIVEN segment 1 WHEN addressed as Arabic-Indic or full-width "1" THEN no route matches (404)
    api = Api(stack)
    owner = api.signup()
    segment_id = defined_segment(api, owner, VISITED)
    assert api.get(f"/api/segments/{segment_id}/", headers=owner.bearer).status_code == 200
    for spelling in ("\u0661", "\uff11"):
        assert_error(api.get(f"/api/segments/{spelling}/", headers=owner.bearer), 404)


def test_connector_cursor_with_non_ascii_digits_is_400(stack: LocalStack) -> None:
    api = Api(stack)
    owner = api.signup()
    cursor = base64.urlsafe_b64encode("\u0661".encode()).decode()
    response = api.get("/api/connectors/", query_string={"cursor": cursor}, headers=owner.bearer)
    assert assert_error(response, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/query/cursor"
