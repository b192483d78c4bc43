"""A compute that dies between its membership commit and its delivery: the outbox keyed by compute id
lets the retry deliver the committed change — once — to the connector and to the cache."""

from __future__ import annotations

from typing import Any

import pytest
from segops import clock
from segops.compute import runner
from segops.localstack import LocalStack
from segops.membership.lookup import user_segments
from segops.messages import MembershipChanged
from segops.store import keys

from tests.integration.connectors.conftest import create_braze_connector
from tests.support.api import Account, Api
from tests.support.dsl_reference import Event
from tests.support.events import insert_events
from tests.support.platforms import FakeBraze
from tests.support.segments import put_segment

BUYERS = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "purchase", "operator": "gte", "value": 1}],
}


class ProcessDied(BaseException):
    """The function instance is killed: no `except Exception` handler of ours runs."""


def test_a_change_committed_before_a_crash_is_delivered_once_by_the_retry(
    stack: LocalStack, api: Api, account: Account, braze: FakeBraze, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = stack.runtime
    tenant = account.tenant_id
    now = clock.now_millis()
    # GIVEN u1, a buyer, in a computed segment pushed to Braze, and u2's (empty) lookup cached
    insert_events(runtime.warehouse, tenant, [Event("u1", "purchase", now, now, {})])
    put_segment(runtime, tenant, 1, BUYERS)
    heard: list[MembershipChanged] = []
    stack.bus.subscribe(
        "membership-changes", "recorder", lambda m: heard.append(MembershipChanged.model_validate_json(m.data))
    )
    runner.request_segment(runtime, tenant, 1, "full", "c1")
    runner.drain(runtime, tenant)
    create_braze_connector(api, account, braze, 1)
    stack.bus.drain()
    assert braze.subscribed() == {"u1"}
    assert user_segments(runtime, tenant, "u2") == ([], False)
    # WHEN u2 buys and the compute's process dies right after its commit row lands
    insert_events(runtime.warehouse, tenant, [Event("u2", "purchase", now, now, {})])
    insert = runtime.warehouse.insert

    def commit_then_die(table: str, *args: Any, **kwargs: Any) -> None:
        insert(table, *args, **kwargs)
        if table == "membership_commits":
            raise ProcessDied

    monkeypatch.setattr(runtime.warehouse, "insert", commit_then_die)
    runner.request_segment(runtime, tenant, 1, "full", "c2")
    with pytest.raises(ProcessDied):
        runner.drain(runtime, tenant)
    monkeypatch.undo()
    stack.bus.drain()
    # THEN the change is committed but not yet delivered: Braze and the cached lookup are behind
    assert braze.subscribed() == {"u1"} and [m.compute_id for m in heard] == ["c1"]
    assert user_segments(runtime, tenant, "u2") == ([], True)
    assert runtime.store.list(keys.membership_outbox_prefix(tenant)) != []
    # WHEN the request is redelivered (the bus retries a message whose handler died) and recomputed
    runner.request_segment(runtime, tenant, 1, "full", "c2")
    runner.drain(runtime, tenant)
    stack.bus.drain()
    # THEN the committed change reached Braze exactly once, and u2's lookup was invalidated
    assert [(m.compute_id, m.entered_count, m.exited_count) for m in heard] == [("c1", 1, 0), ("c2", 1, 0)]
    assert braze.subscribed() == {"u1", "u2"}
    pushes_of_u2 = [
        r
        for r in braze.requests
        if r.status == 201 and any("u2" in g.get("external_ids", []) for g in r.body["subscription_groups"])
    ]
    assert len(pushes_of_u2) == 1
    assert user_segments(runtime, tenant, "u2") == ([1], False)
    assert runtime.store.list(keys.membership_outbox_prefix(tenant)) == []
