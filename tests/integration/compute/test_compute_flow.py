"""End to end through HTTP and the bus: compute requests, event-driven deltas, scheduled ticks,
and the membership lookup with its cache."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from segops.bus.base import Topic
from segops.compute import runner
from segops.localstack import LocalStack
from segops.membership.lookup import active_segments_key
from segops.messages import ComputeRequested, SegmentComputeEnvelope, UsersChanged
from segops.segments import active
from segops.segments.models import Segment
from segops.store import keys

from tests.support.api import Account, Api, assert_error
from tests.support.dsl_reference import Event
from tests.support.events import insert_events
from tests.support.fixtures import load_fixture
from tests.support.segments import put_segment

VIEWED: dict[str, Any] = load_fixture("segments/page-viewers")


def now() -> datetime:
    return datetime.now(UTC)


def viewed(user: str, at: datetime | None = None) -> Event:
    at = at or now()
    return Event(user, "page_viewed", at, at, {"path": "/pricing"})


def lookup(api: Api, account: Account, user_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api.get(f"/api/segments/membership/?user_id={user_id}", headers=headers or account.key)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def users_changed(stack: LocalStack, tenant_id: int, *user_ids: str) -> None:
    """What the event writer publishes after a write."""
    notice = SegmentComputeEnvelope(message=UsersChanged(tenant_id=tenant_id, user_ids=list(user_ids), watermark=now()))
    stack.bus.publish(Topic.SEGMENT_COMPUTE, notice.model_dump_json().encode(), {"tenant_id": str(tenant_id)})


def test_compute_via_api_then_lookup_with_cache(stack: LocalStack) -> None:
    # GIVEN a tenant whose user-123 viewed the pricing page, and a defined segment 42
    api = Api(stack)
    account = api.signup()
    insert_events(stack.runtime.warehouse, account.tenant_id, [viewed("user-123")])
    put_segment(stack.runtime, account.tenant_id, 42, VIEWED)
    # WHEN a compute is requested
    queued = api.post("/api/segments/42/compute/", headers=account.bearer)
    assert (queued.status_code, queued.get_json()) == (202, {"status": "queued"})
    assert api.get("/api/segments/42/compute/", headers=account.bearer).get_json()["status"] == "queued"
    stack.bus.drain()
    # THEN the compute succeeded and the lookup finds the segment, first from the warehouse, then cached
    status = api.get("/api/segments/42/compute/", headers=account.key).get_json()
    assert (status["status"], status["mode"], status["member_count"], status["entered_count"]) == (
        "succeeded",
        "full",
        1,
        1,
    )
    assert lookup(api, account, "user-123") == {"user_id": "user-123", "segment_ids": [42], "cached": False}
    assert lookup(api, account, "user-123") == {"user_id": "user-123", "segment_ids": [42], "cached": True}
    assert lookup(api, account, "user-123", account.bearer)["segment_ids"] == [42]
    assert lookup(api, account, "nobody") == {"user_id": "nobody", "segment_ids": [], "cached": False}


def test_compute_endpoints_scope_and_validation(stack: LocalStack) -> None:
    api = Api(stack)
    owner, other = api.signup(), api.signup()
    put_segment(stack.runtime, owner.tenant_id, 1, VIEWED)
    put_segment(stack.runtime, owner.tenant_id, 2, None)
    assert_error(api.post("/api/segments/1/compute/", headers=other.bearer), 404, "not_found")
    assert_error(api.get("/api/segments/1/compute/", headers=other.key), 404, "not_found")
    assert_error(api.post("/api/segments/2/compute/", headers=owner.bearer), 409, "conflict")
    assert_error(api.post("/api/segments/1/compute/?mode=fast", headers=owner.bearer), 400, "validation_failed")
    assert_error(api.post("/api/segments/1/compute/"), 401, "unauthorized")
    assert_error(api.get("/api/segments/membership/", headers=owner.key), 400, "validation_failed")
    never = api.get("/api/segments/1/compute/", headers=owner.bearer).get_json()
    assert never["status"] is None and never["member_count"] is None


def test_new_events_enter_users_through_debounced_notices(stack: LocalStack) -> None:
    # GIVEN a computed segment and a cached lookup saying u2 is in nothing
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    insert_events(stack.runtime.warehouse, tenant, [viewed("u1")])
    put_segment(stack.runtime, tenant, 7, VIEWED)
    api.post("/api/segments/7/compute/", headers=account.bearer)
    stack.bus.drain()
    assert lookup(api, account, "u2")["segment_ids"] == []
    assert lookup(api, account, "u2")["cached"] is True
    computes_before = _commits(stack, tenant)
    # WHEN u2..u6 view the page: five writes, whose five notices arrive within the debounce window
    users = ("u2", "u3", "u4", "u5", "u6")
    for user in users:
        insert_events(stack.runtime.warehouse, tenant, [viewed(user)])
    for user in users:
        users_changed(stack, tenant, user)
    stack.bus.drain()
    # THEN one delta compute made them all members, and u2's stale cache entry was dropped
    assert _commits(stack, tenant) == computes_before + 1
    assert lookup(api, account, "u2") == {"user_id": "u2", "segment_ids": [7], "cached": False}
    status = api.get("/api/segments/7/compute/", headers=account.bearer).get_json()
    assert (status["mode"], status["entered_count"], status["member_count"]) == ("delta", 5, 6)


def test_scheduled_tick_catches_time_window_exits(stack: LocalStack) -> None:
    # GIVEN a 3-second window segment with a member who viewed just now
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    window = {"logic": "AND", "conditions": [{**VIEWED["conditions"][0], "window_days": 3 / 86_400}]}
    put_segment(stack.runtime, tenant, 3, window)
    seen = now()
    insert_events(stack.runtime.warehouse, tenant, [viewed("u1", seen)])
    api.post("/api/segments/3/compute/", headers=account.bearer)
    stack.bus.drain()
    assert lookup(api, account, "u1")["segment_ids"] == [3]
    # WHEN the window passes with no new event and the scheduler ticks
    time.sleep(max(0.0, (seen + timedelta(seconds=3.1) - now()).total_seconds()))
    stack.publish_schedules()
    stack.bus.drain()
    # THEN a delta compute let u1 exit
    assert lookup(api, account, "u1") == {"user_id": "u1", "segment_ids": [], "cached": False}
    status = api.get("/api/segments/3/compute/", headers=account.bearer).get_json()
    assert (status["mode"], status["exited_count"], status["member_count"]) == ("delta", 1, 0)


def test_deactivated_segment_disappears_from_cached_lookups(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    insert_events(stack.runtime.warehouse, tenant, [viewed("u1")])
    put_segment(stack.runtime, tenant, 1, VIEWED)
    put_segment(stack.runtime, tenant, 2, VIEWED)
    api.post("/api/segments/1/compute/", headers=account.bearer)
    api.post("/api/segments/2/compute/", headers=account.bearer)
    stack.bus.drain()
    assert lookup(api, account, "u1")["segment_ids"] == [1, 2]
    assert lookup(api, account, "u1")["cached"] is True
    # WHEN the segments API deactivates segment 2 (store write, index refresh, then drops the active-set key)
    segment = stack.runtime.documents.load(keys.segment_key(tenant, 2), Segment)
    assert segment is not None
    stack.runtime.documents.save(keys.segment_key(tenant, 2), segment.model_copy(update={"active": False}))
    active.refresh(stack.runtime, tenant, 2)
    stack.runtime.cache.delete(active_segments_key(tenant))
    # THEN the cached entry no longer yields it
    assert lookup(api, account, "u1") == {"user_id": "u1", "segment_ids": [1], "cached": True}


def test_redelivered_and_malformed_messages_are_harmless(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    insert_events(stack.runtime.warehouse, tenant, [viewed("u1")])
    put_segment(stack.runtime, tenant, 1, VIEWED)
    request = SegmentComputeEnvelope(
        message=ComputeRequested(tenant_id=tenant, segment_id=1, compute_id="c-1", requested_at=now())
    )
    for _ in range(3):
        stack.bus.publish(Topic.SEGMENT_COMPUTE, request.model_dump_json().encode())
    stack.bus.publish(Topic.SEGMENT_COMPUTE, b"not json")
    stack.bus.publish(Topic.SEGMENT_COMPUTE, orjson.dumps({"kind": "nope"}))
    stack.bus.drain()
    assert _commits(stack, tenant) == 1
    assert list(stack.bus.dead_letters) == []
    assert lookup(api, account, "u1")["segment_ids"] == [1]


def _commits(stack: LocalStack, tenant_id: int) -> int:
    return int(
        stack.runtime.warehouse.query(
            "SELECT count() FROM membership_commits WHERE tenant_id = {t:UInt64}", {"t": tenant_id}
        ).scalar()
    )


def test_computes_of_one_tenant_never_overlap(stack: LocalStack) -> None:
    # GIVEN a compute already holding the tenant's lease when another request arrives
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    insert_events(stack.runtime.warehouse, tenant, [viewed("u1")])
    put_segment(stack.runtime, tenant, 1, VIEWED)
    assert runner._acquire(stack.runtime, tenant, "someone-else")
    api.post("/api/segments/1/compute/", headers=account.bearer)
    stack.bus.drain()
    # THEN the request waits in the queue instead of running beside it
    assert _commits(stack, tenant) == 0
    queued = stack.runtime.documents.load(keys.compute_queue_key(tenant), runner.TenantQueue)
    assert queued is not None and 1 in queued.segments
    # WHEN the holder dies and its lease lapses, the next tick takes over and runs the queued work
    stack.runtime.documents.update(
        keys.compute_queue_key(tenant), runner.TenantQueue, lambda q: q.model_copy(update={"lease_until": now()})
    )
    stack.publish_schedules()
    stack.bus.drain()
    assert _commits(stack, tenant) == 1


def test_quickstart_track_compute_check_then_enter_without_manual_compute(stack: LocalStack) -> None:
    # GIVEN the quickstart: a tracked page view, a segment "Pricing Page Visitors", a compute
    api = Api(stack)
    account = api.signup()
    track = {"user_id": "user-123", "event_type": "page_viewed", "payload": {"path": "/pricing"}}
    assert api.post("/api/ingestion/track/", track, headers=account.key).status_code == 202
    stack.bus.drain()
    put_segment(stack.runtime, account.tenant_id, 42, VIEWED)
    assert api.post("/api/segments/42/compute/", headers=account.bearer).get_json() == {"status": "queued"}
    stack.bus.drain()
    assert lookup(api, account, "user-123") == {"user_id": "user-123", "segment_ids": [42], "cached": False}
    assert lookup(api, account, "user-456")["segment_ids"] == []
    # WHEN another user views the page (track → event writer → users-changed notice → delta)
    assert api.post("/api/ingestion/track/", {**track, "user_id": "user-456"}, headers=account.key).status_code == 202
    stack.bus.drain()
    # THEN they entered without anyone requesting a compute, and the stale cache entry is gone
    assert lookup(api, account, "user-456") == {"user_id": "user-456", "segment_ids": [42], "cached": False}


def test_an_event_dated_a_little_ahead_counts_once_its_time_comes(stack: LocalStack) -> None:
    """A client whose clock runs ahead: the event-driven compute runs before the event's time, and the
    segment has no window, so no scheduled delta of time-dependent segments would ever revisit it."""
    api = Api(stack)
    account = api.signup()
    created = api.post("/api/segments/", {"name": "Viewers", "definition": VIEWED}, headers=account.bearer)
    segment_id = created.get_json()["id"]
    stack.bus.drain()
    # WHEN an event dated 3 s ahead arrives and its notice is computed at once
    ahead = now() + timedelta(seconds=3)
    event = {"user_id": "early", "event_type": "page_viewed", "occurred_at": ahead.isoformat()}
    assert api.post("/api/ingestion/track/", event, headers=account.key).status_code == 202
    stack.bus.drain()
    # THEN it does not count yet
    assert lookup(api, account, "early")["segment_ids"] == []
    # WHEN its time has come and the scheduler ticks THEN the user is in the segment
    time.sleep(max((ahead - now()).total_seconds(), 0) + 0.2)
    stack.publish_schedules()
    stack.bus.drain()
    assert lookup(api, account, "early")["segment_ids"] == [segment_id]
