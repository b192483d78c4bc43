"""A compute's `MembershipChanged` that reaches a connector after the membership change log was
compacted past that compute: its diff is gone, so the connector resyncs the segment in full instead
of applying an empty diff."""

from __future__ import annotations

from datetime import timedelta

from segops import clock
from segops.bus.base import Topic
from segops.compute import runner
from segops.connectors import models as m
from segops.connectors.service import syncs
from segops.localstack import LocalStack
from segops.membership import writer
from segops.store import keys

from tests.integration.connectors.conftest import create_braze_connector
from tests.support.api import Account, Api
from tests.support.dsl_reference import Event
from tests.support.events import insert_events
from tests.support.platforms import FakeBraze
from tests.support.segments import put_segment

LOYAL_BUYERS = {
    "logic": "AND",
    "conditions": [
        {"type": "event_count", "event_type": "purchase", "operator": "gte", "value": 1},
        {"type": "event_count", "event_type": "refund", "operator": "eq", "value": 0},
    ],
}


def test_a_diff_compacted_away_before_its_sync_becomes_a_full_sync(
    stack: LocalStack, api: Api, account: Account, braze: FakeBraze
) -> None:
    runtime = stack.runtime
    tenant = account.tenant_id
    now = clock.now_millis()
    # GIVEN u1, a loyal buyer, pushed to Braze by an active connector of the computed segment
    insert_events(runtime.warehouse, tenant, [Event("u1", "purchase", now, now, {})])
    put_segment(runtime, tenant, 1, LOYAL_BUYERS)
    heard: list[bytes] = []
    stack.bus.subscribe("membership-changes", "recorder", lambda message: heard.append(message.data))
    runner.request_segment(runtime, tenant, 1, "full", "c1")
    runner.drain(runtime, tenant)
    connector_id = create_braze_connector(api, account, braze, 1)
    stack.bus.drain()
    assert braze.subscribed() == {"u1"}
    # WHEN u1 refunds and u2 buys, a compute publishes that diff (u2 entered, u1 exited) ...
    insert_events(
        runtime.warehouse, tenant, [Event("u1", "refund", now, now, {}), Event("u2", "purchase", now, now, {})]
    )
    runner.request_segment(runtime, tenant, 1, "full", "c2")
    runner.drain(runtime, tenant)
    # ... and the change log is compacted past it before the connector gets the message
    writer.compact(runtime, tenant, clock.now() + timedelta(seconds=1))
    stack.bus.drain()
    # THEN the connector noticed it could not build the diff and resynced the whole segment
    assert braze.subscribed() == {"u2"}
    history, _ = syncs(runtime, tenant, connector_id, 10, None)
    incremental = next(s for s in history if s.compute_id == "c2")
    assert (incremental.kind, incremental.status, incremental.added, incremental.removed) == (
        "incremental",
        "stale",
        0,
        0,
    )
    assert "compacted" in incremental.error_summary[0]
    resync = history[0]
    assert (resync.kind, resync.status, resync.added, resync.removed) == ("full", "succeeded", 1, 1)
    connector = runtime.documents.load(keys.connector_key(tenant, connector_id), m.Connector)
    assert connector is not None and connector.applied_version is not None
    # AND a compute after it syncs incrementally as before
    insert_events(runtime.warehouse, tenant, [Event("u3", "purchase", now, now, {})])
    runner.request_segment(runtime, tenant, 1, "full", "c3")
    runner.drain(runtime, tenant)
    stack.bus.drain()
    assert braze.subscribed() == {"u2", "u3"}
    [latest], _ = syncs(runtime, tenant, connector_id, 1, None)
    assert (latest.kind, latest.compute_id, latest.status, latest.added) == ("incremental", "c3", "succeeded", 1)
    # WHEN the first compute's message is delivered again (its commit row compacted away too, so
    # nothing says how old it is)
    runtime.bus.publish(Topic.MEMBERSHIP_CHANGES, next(m for m in heard if b'"c1"' in m))
    stack.bus.drain()
    # THEN it is not applied, and no full sync is queued: the connector already holds a newer state
    redelivered, newest = syncs(runtime, tenant, connector_id, 2, None)[0]
    assert (redelivered.compute_id, redelivered.status) == ("c1", "stale")
    assert "already applied" in redelivered.error_summary[0]
    assert newest.compute_id == "c3"
    assert braze.subscribed() == {"u2", "u3"}
