"""End to end through the stack: events in the warehouse, real computes writing the membership tables
and publishing `MembershipChanged`, the connector functions reading the real feed, and the platforms'
contract servers ending up equal to the segment's members."""

from __future__ import annotations

from datetime import timedelta

from segops import clock
from segops.compute import engine
from segops.compute.engine import Request
from segops.localstack import LocalStack
from segops.membership import store

from tests.integration.connectors.conftest import API_KEY
from tests.support.api import Account, Api
from tests.support.dsl_reference import Event
from tests.support.events import insert_events
from tests.support.platforms import FakeBraze, FakeKlaviyo, FakeTalonOne
from tests.support.segments import put_segment

RECENT_BUYERS = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "purchase", "operator": "gte", "value": 1, "window_days": 30}],
}


def test_computes_drive_adds_and_removes_on_every_platform(
    stack: LocalStack, api: Api, account: Account, braze: FakeBraze, klaviyo: FakeKlaviyo
) -> None:
    runtime = stack.runtime
    tenant = account.tenant_id
    now = clock.now_millis()

    def event(user: str, kind: str, age: timedelta, payload: dict[str, object] | None = None) -> Event:
        return Event(user, kind, now - age, now - age, payload or {})

    # GIVEN buyers (one of them 20 days ago), a browser, their identify payloads, and a computed segment
    insert_events(
        runtime.warehouse,
        tenant,
        [
            event("u1", "purchase", timedelta(days=20)),
            event("u2", "purchase", timedelta(days=1)),
            event("u3", "page_viewed", timedelta(days=1)),
            *(
                event(u, "context_identified", timedelta(days=2), {"email": f"{u}@shop.test"})
                for u in ("u1", "u2", "u3")
            ),
        ],
    )
    put_segment(runtime, tenant, 1, RECENT_BUYERS)
    published: list[bytes] = []
    stack.bus.subscribe("membership-changes", "test-recorder", lambda message: published.append(message.data))
    engine.compute(runtime, tenant, [Request(1, "full")], now)
    stack.bus.drain()
    # WHEN a Braze (external_id) and a Klaviyo (email) connector are turned on for it
    connector_ids = []
    for body in (
        {"type": "braze", "config": {"rest_endpoint": braze.url, "subscription_group_id": "sg-vip"}},
        {"type": "klaviyo", "config": {"list_id": "Y6nRLr", "base_url": klaviyo.url}},
    ):
        created = api.post(
            "/api/connectors/",
            {"name": body["type"], "segment_id": 1, "active": True, "credentials": {"api_key": API_KEY}, **body},
            headers=account.bearer,
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        connector_ids.append(created.get_json()["id"])
    stack.bus.drain()
    # THEN the full syncs pushed the current members
    assert braze.subscribed() == {"u1", "u2"}
    assert klaviyo.members() == {"u1@shop.test", "u2@shop.test"}

    # WHEN u3 buys and, fifteen days later, u1's purchase has left the 30-day window
    insert_events(runtime.warehouse, tenant, [event("u3", "purchase", timedelta(days=-1))])
    later = now + timedelta(days=15)
    [outcome] = engine.compute(runtime, tenant, [Request(1, "delta")], later)
    assert outcome.status == "succeeded"
    stack.bus.drain()
    # THEN both platforms received the add and the remove, and equal the segment's members
    members = set(store.iter_members(runtime.warehouse, tenant, 1))
    assert members == {"u2", "u3"}
    assert braze.subscribed() == members
    assert klaviyo.members() == {f"{u}@shop.test" for u in members}
    for connector_id in connector_ids:
        syncs = api.get(f"/api/connectors/{connector_id}/syncs/", headers=account.bearer).get_json()["results"]
        assert (syncs[0]["kind"], syncs[0]["added"], syncs[0]["removed"]) == ("incremental", 1, 1)

    # WHEN the first compute's message arrives again, late
    stack.runtime.bus.publish("membership-changes", published[0])
    stack.bus.drain()
    # THEN it is recorded as stale and changes nothing
    assert braze.subscribed() == members
    syncs = api.get(f"/api/connectors/{connector_ids[0]}/syncs/", headers=account.bearer).get_json()["results"]
    assert syncs[0]["status"] == "stale"

    # WHEN a compute runs at an earlier `now` than the previous one (newer in publication order)
    engine.compute(runtime, tenant, [Request(1, "full")], now)
    stack.bus.drain()
    # THEN it is applied: order is the membership version, not the compute's clock
    members = set(store.iter_members(runtime.warehouse, tenant, 1))
    assert members == {"u1", "u2"}
    assert braze.subscribed() == members
    assert klaviyo.members() == {f"{u}@shop.test" for u in members}
    assert not braze.violations and not klaviyo.violations


def test_compute_requested_over_http_reaches_the_platform(
    stack: LocalStack, api: Api, account: Account, talonone: FakeTalonOne
) -> None:
    """The `make dev` path: POST /api/segments/<id>/compute/ → segment_compute → membership-changes
    → connector_sync → the platform."""
    runtime = stack.runtime
    tenant = account.tenant_id
    at = clock.now_millis()

    def viewed(user: str, path: str) -> Event:
        return Event(user, "page_viewed", at, at, {"path": path})

    def viewers(path: str | None) -> dict[str, object]:
        condition: dict[str, object] = {
            "type": "event_count",
            "event_type": "page_viewed",
            "operator": "gte",
            "value": 1,
        }
        if path is not None:
            condition["where"] = [{"property": "path", "operator": "eq", "value": path}]
        return {"logic": "AND", "conditions": [condition]}

    # GIVEN viewers, a segment of them, and an active Talon.One connector on it
    insert_events(runtime.warehouse, tenant, [viewed("u1", "/home"), viewed("u2", "/pricing")])
    put_segment(runtime, tenant, 5, viewers(None))
    created = api.post(
        "/api/connectors/",
        {
            "name": "Viewers",
            "type": "talonone",
            "segment_id": 5,
            "active": True,
            "config": {"base_url": talonone.url, "audience_name": "Viewers"},
            "credentials": {"api_key": API_KEY},
        },
        headers=account.bearer,
    )
    assert created.status_code == 201
    stack.bus.drain()
    # WHEN a compute is requested over HTTP
    assert api.post("/api/segments/5/compute/", headers=account.bearer).status_code == 202
    stack.bus.drain()
    # THEN the audience holds the members
    [audience] = talonone.audiences.values()
    assert talonone.members(audience.id) == {"u1", "u2"} == set(store.iter_members(runtime.warehouse, tenant, 5))
    # WHEN a new viewer arrives, the definition narrows to /pricing, and another compute runs
    insert_events(runtime.warehouse, tenant, [viewed("u3", "/pricing")])
    put_segment(runtime, tenant, 5, viewers("/pricing"), version=2)
    assert api.post("/api/segments/5/compute/", headers=account.bearer).status_code == 202
    stack.bus.drain()
    # THEN u3 was added and u1 removed
    assert talonone.members(audience.id) == {"u2", "u3"} == set(store.iter_members(runtime.warehouse, tenant, 5))
    assert not talonone.violations
