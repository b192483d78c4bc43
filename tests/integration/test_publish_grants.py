"""Deployed, a function may publish only to the topics its manifest entry lists in `publishes`
(terraform/iam.tf grants roles/pubsub.publisher on those alone). The local stack holds every
function to the same list, so a flow that publishes elsewhere fails here as it would in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from segops.config import Settings
from segops.localstack import LocalStack
from segops.manifest import FunctionSpec, load_manifest

from tests.support.api import Api, assert_error
from tests.support.schema import copy_migrated_schema
from tests.support.segment_api import compute, defined_segment

VIEWED = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}],
}


def test_a_function_publishes_only_to_the_topics_of_its_manifest_entry(settings: Settings) -> None:
    # GIVEN the stack with a manifest whose `api` lists no topic
    manifest = load_manifest()
    narrowed = manifest.model_copy(
        update={
            "functions": [
                spec.model_copy(update={"publishes": []}) if spec.name == "api" else spec for spec in manifest.functions
            ]
        }
    )
    copy_migrated_schema(settings)
    stack = LocalStack(settings, narrowed)
    try:
        api = Api(stack)
        account = api.signup()
        # (created inactive: setting an active segment's definition would publish its compute already)
        body = {"name": "Viewers", "definition": VIEWED, "active": False}
        created = api.post("/api/segments/", body, headers=account.bearer)
        assert created.status_code == 201, created.get_data(as_text=True)
        segment_id = created.get_json()["id"]
        published = stack.bus.published_count
        # WHEN a compute is requested THEN the publish is refused, as Pub/Sub refuses it deployed
        assert_error(api.post(f"/api/segments/{segment_id}/compute/", headers=account.bearer), 500, "internal_error")
        assert stack.bus.published_count == published
    finally:
        stack.stop()


def test_recompute_and_the_scheduled_tick_publish_within_their_grants(stack: LocalStack) -> None:
    # GIVEN the real manifest: `api` publishes compute requests, `segment_compute` fans the tick out
    api = Api(stack)
    account = api.signup()
    segment_id = defined_segment(api, account, VIEWED)
    # WHEN a recompute is requested over HTTP and the scheduler's tick is delivered
    assert compute(api, account, segment_id)["status"] == "succeeded"
    stack.publish_schedules()
    stack.bus.drain()
    # THEN nothing was refused: no delivery failed its way to a dead letter
    assert list(stack.bus.dead_letters) == []


def test_a_function_that_publishes_must_declare_the_bus() -> None:
    # Deployed, an undeclared backend is never built: its first publish would raise
    spec = load_manifest().function("connector_sync").model_dump()
    spec["uses"] = [backend for backend in spec["uses"] if backend != "bus"]
    with pytest.raises(ValidationError, match="does not declare `bus`"):
        FunctionSpec.model_validate(spec)
