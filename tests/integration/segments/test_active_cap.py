"""A tenant's active segments are capped: a create or activation past the cap is a 409."""

from __future__ import annotations

import pytest
from segops.config import Settings
from segops.localstack import LocalStack
from werkzeug.test import TestResponse

from tests.support.api import Api, assert_error


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_active_segments": 2})


def test_creating_or_activating_past_the_cap_is_refused(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()

    def create(active: bool) -> TestResponse:
        body = {"name": "Segment", "segment_type": "rule", "active": active}
        return api.post("/api/segments/", body, headers=account.bearer)

    # GIVEN a tenant at its cap of two active segments, and an inactive one
    first, _second = (create(True).get_json()["id"] for _ in range(2))
    spare = create(False).get_json()["id"]
    # WHEN a third active segment is created, or the inactive one activated
    refused = [create(True), api.patch(f"/api/segments/{spare}/", {"active": True}, headers=account.bearer)]
    # THEN both are refused with the limit, and nothing changed
    for response in refused:
        assert assert_error(response, 409, "segment_limit_reached")["details"] == {"limit": 2}
    listed = api.get("/api/segments/?active=true", headers=account.bearer).get_json()["results"]
    assert len(listed) == 2
    # AND once one is deactivated, the other can take its place; other edits of active ones still work
    deactivated = api.patch(f"/api/segments/{first}/", {"active": False}, headers=account.bearer)
    assert deactivated.status_code == 200
    assert api.patch(f"/api/segments/{spare}/", {"active": True}, headers=account.bearer).status_code == 200
    assert api.patch(f"/api/segments/{spare}/", {"name": "Renamed"}, headers=account.bearer).status_code == 200
