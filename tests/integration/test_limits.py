"""Plans, quotas and rate limits over HTTP (issue #18 item 2): the tenant's plan read-only, 429
`rate_limited` with `Retry-After` and `RateLimit-*` per API key and per tenant, 429 `quota_exceeded`
for the monthly events (a batch accepted or refused whole), 409 past the plan's segments and
connectors, and the operator command that sets a plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from segops import clock
from segops.auth.principal import Principal
from segops.cache.redis_backend import RedisCache
from segops.config import Settings
from segops.limits import plans, quotas
from segops.limits.rates import admit
from segops.localstack import LocalStack
from segops.runtime import build_runtime
from segops.store import keys

from tests.support.api import Account, Api, assert_error


@pytest.fixture(params=["memory", "valkey"])
def stack(request: pytest.FixtureRequest, settings: Settings) -> Iterator[LocalStack]:
    """The whole stack, its cache in-process (`make dev`) or a real Valkey server (production)."""
    server = None
    if request.param == "valkey":
        url = request.getfixturevalue("valkey_url")
        # Every stack numbers its tenants from 1: no test's buckets and plans may leak into another's.
        server = redis.Redis.from_url(url)
        server.flushdb()
        settings = settings.model_copy(update={"cache": "redis", "redis_url": url})
    local = LocalStack(settings)
    try:
        yield local
    finally:
        local.stop()
        if server is not None:
            server.flushdb()


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


@pytest.fixture
def account(api: Api) -> Account:
    return api.signup()


def set_plan(api: Api, account: Account, **limits: Any) -> None:
    plans.set_plan(api.stack.runtime, account.tenant_id, limits)


def events(n: int) -> dict[str, Any]:
    return {"events": [{"user_id": f"u{i}", "event_type": "page_viewed"} for i in range(n)]}


def test_the_plan_is_the_default_one_until_an_operator_sets_it(api: Api, account: Account, settings: Settings) -> None:
    shown = api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=account.bearer)
    assert shown.status_code == 200, shown.get_data(as_text=True)
    assert shown.get_json() == {
        "name": "default",
        "events_per_month": settings.plan_events_per_month,
        "api_calls_per_minute": settings.plan_api_calls_per_minute,
        "api_calls_per_minute_per_key": settings.plan_api_calls_per_minute_per_key,
        "active_segments": settings.plan_active_segments,
        "connectors": settings.plan_connectors,
        "updated_at": None,
        "events_this_month": 0,
    }
    set_plan(api, account, name="growth", events_per_month=1000)
    body = api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=account.bearer).get_json()
    assert (body["name"], body["events_per_month"], body["connectors"]) == ("growth", 1000, settings.plan_connectors)
    assert body["updated_at"] is not None


def test_the_plan_is_for_admins_of_the_tenant_only(api: Api, account: Account) -> None:
    other = api.signup()
    member = api.add_member(account, other, "member")
    assert_error(api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=member), 403, "forbidden")
    assert_error(api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=other.bearer), 403, "forbidden")
    assert_error(api.get(f"/api/tenants/{other.tenant_id}/plan/", headers=account.bearer), 404, "not_found")
    assert_error(api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=account.key), 401, "unauthorized")


def test_a_key_over_its_rate_is_429_until_its_bucket_refills(api: Api, account: Account) -> None:
    # GIVEN a plan of 3 calls a minute per key (one token every 20 s)
    set_plan(api, account, api_calls_per_minute_per_key=3)
    start = clock.now() + timedelta(seconds=1)
    with clock.frozen(start):
        answers = [api.get("/api/segments/", headers=account.key) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["RateLimit-Limit"] for a in answers] == ["3", "3", "3"]
        assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        assert [a.headers["RateLimit-Reset"] for a in answers] == ["20", "40", "60"]
        # WHEN a fourth comes at the same instant
        refused = api.get("/api/segments/", headers=account.key)
    # THEN 429 rate_limited: come back when one token is there
    error = assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "20" and error["details"]["retry_after"] == 20
    assert error["details"]["limit"] == 3
    assert (refused.headers["RateLimit-Limit"], refused.headers["RateLimit-Remaining"]) == ("3", "0")
    # AND 19 s later it is still refused, 20 s later served
    with clock.frozen(start + timedelta(seconds=19)):
        assert_error(api.get("/api/segments/", headers=account.key), 429, "rate_limited")
    with clock.frozen(start + timedelta(seconds=20)):
        again = api.get("/api/segments/", headers=account.key)
    assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "0"


def test_a_refused_call_is_not_billed(api: Api, account: Account) -> None:
    # GIVEN a key allowed 3 calls a minute, which makes 5 at one instant (2 refused)
    set_plan(api, account, api_calls_per_minute_per_key=3)
    with clock.frozen(clock.now() + timedelta(seconds=1)):
        statuses = [api.get("/api/segments/", headers=account.key).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    # THEN the usage counts the 3 answered calls and no refusal (the usage read is a 2xx of its own)
    report = api.get("/api/usage/", headers=account.bearer).get_json()
    counted = {(row["metric"], row["dimension"]): row["value"] for row in report["breakdown"]}
    assert counted.get(("api_calls", "api:4xx"), 0) == 0
    assert counted[("api_calls", "api:2xx")] >= 3


def test_refusals_before_the_handler_cost_a_token_and_are_billed(api: Api, account: Account) -> None:
    # GIVEN a viewer key allowed 4 calls a minute
    created = api.post("/api/keys/", {"name": "viewer", "role": "viewer"}, headers=account.bearer)
    viewer = {"Authorization": f"ApiKey {created.get_json()['key']}"}
    set_plan(api, account, api_calls_per_minute_per_key=4)
    with clock.frozen(clock.now() + timedelta(seconds=1)):
        # WHEN it calls a route its role may not (403), and sends a body that is not JSON, or not
        # JSON at all (400, 415): each answered before any handler ran
        forbidden = api.post("/api/segments/", {"name": "x"}, headers=viewer)
        not_json = api.post("/api/segments/", data=b"{", content_type="application/json", headers=viewer)
        plain = api.post("/api/segments/", data=b"x", content_type="text/plain", headers=viewer)
        allowed = api.get("/api/segments/", headers=viewer)
        over = api.get("/api/segments/", headers=viewer)
    # THEN each took a token, so the fifth call is over the rate
    assert [r.status_code for r in (forbidden, not_json, plain, allowed)] == [403, 400, 415, 200]
    assert forbidden.headers["RateLimit-Remaining"] == "3"
    assert_error(over, 429, "rate_limited")
    # AND the three refusals are billed calls (a 429 is not)
    report = api.get("/api/usage/", headers=account.bearer).get_json()
    counted = {(row["metric"], row["dimension"]): row["value"] for row in report["breakdown"]}
    assert counted[("api_calls", "api:4xx")] == 3


def test_concurrent_requests_are_never_over_admitted(api: Api, account: Account) -> None:
    # GIVEN 10 calls a minute for the key and 8 clients sending 5 requests each at one frozen instant
    set_plan(api, account, api_calls_per_minute_per_key=10)
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        client = Api(api.stack)
        for _ in range(5):
            status = client.get("/api/segments/", headers=account.key).status_code
            with lock:
                statuses.append(status)

    with clock.frozen(clock.now() + timedelta(seconds=1)):
        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # THEN exactly the bucket's 10 were served, the others refused
    assert sorted(statuses) == [200] * 10 + [429] * 30


def test_the_tenant_bucket_is_shared_by_its_keys_and_users(api: Api, account: Account) -> None:
    set_plan(api, account, api_calls_per_minute=2)
    with clock.frozen(clock.now() + timedelta(seconds=1)):
        assert api.get("/api/segments/", headers=account.key).status_code == 200
        assert api.get("/api/segments/", headers=account.bearer).status_code == 200
        refused = api.post("/api/ingestion/track/", {"user_id": "u", "event_type": "x"}, headers=account.key)
        assert_error(refused, 429, "rate_limited")
        assert refused.headers["Retry-After"] == "30" and refused.headers["RateLimit-Limit"] == "2"
        # another tenant is not limited by it
        other = api.signup()
        assert api.get("/api/segments/", headers=other.key).status_code == 200


def test_calls_without_a_tenant_are_not_limited(api: Api, account: Account) -> None:
    assert "RateLimit-Limit" not in api.get("/api/ingestion/health/").headers
    listed = api.get("/api/tenants/", headers=account.bearer)
    assert listed.status_code == 200 and "RateLimit-Limit" not in listed.headers


def test_the_monthly_events_quota_refuses_a_batch_whole_and_publishes_nothing(api: Api, account: Account) -> None:
    set_plan(api, account, events_per_month=5)
    bus = api.stack.bus
    assert api.post("/api/ingestion/track/batch/", events(4), headers=account.key).status_code == 202
    published = bus.published_count
    # WHEN a batch of 2 would take the month to 6
    refused = api.post("/api/ingestion/track/batch/", events(2), headers=account.key)
    # THEN it is refused whole, with the plan's limit, and nothing is published
    error = assert_error(refused, 429, "quota_exceeded")
    assert {k: error["details"][k] for k in ("limit", "used", "requested")} == {"limit": 5, "used": 4, "requested": 2}
    month_left = int(refused.headers["Retry-After"])
    assert 1 <= month_left <= 31 * 86400 and error["details"]["retry_after"] == month_left
    assert bus.published_count == published
    # AND the refusal is recorded where the tenant reads what was refused (not billed as refused events)
    [recorded] = api.get("/api/ingestion/errors/", headers=account.key).get_json()["results"]
    assert recorded["error_type"] == "quota_exceeded" and recorded["detail"].startswith("2 event(s) refused")
    # AND what still fits is accepted, invalid events not counted
    mixed = {"events": [{"user_id": "u", "event_type": "page_viewed"}, {"user_id": "", "event_type": "x"}]}
    assert api.post("/api/ingestion/track/batch/", mixed, headers=account.key).get_json() == {"queued": 1, "skipped": 1}
    assert_error(api.post("/api/ingestion/track/", events(1)["events"][0], headers=account.key), 429, "quota_exceeded")
    plan = api.get(f"/api/tenants/{account.tenant_id}/plan/", headers=account.bearer).get_json()
    assert plan["events_this_month"] == 5
    # AND a new month starts from zero
    with clock.frozen(clock.now() + timedelta(days=32)):
        assert api.post("/api/ingestion/track/", events(1)["events"][0], headers=account.key).status_code == 202


def test_events_the_bus_refused_are_given_back_to_the_quota(
    api: Api, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_plan(api, account, events_per_month=3)

    def bus_down(*_: object, **__: object) -> str:
        raise ConnectionError("pubsub unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(api.stack.bus, "publish", bus_down)
        assert_error(api.post("/api/ingestion/track/batch/", events(3), headers=account.key), 503)
    # the client's retry of the same batch fits: nothing was kept from the failed attempt
    assert api.post("/api/ingestion/track/batch/", events(3), headers=account.key).status_code == 202


def test_active_segments_past_the_plan_are_409(api: Api, account: Account) -> None:
    set_plan(api, account, active_segments=2)
    for name in ("a", "b"):
        assert api.post("/api/segments/", {"name": name}, headers=account.key).status_code == 201
    error = assert_error(api.post("/api/segments/", {"name": "c"}, headers=account.key), 409, "plan_limit_reached")
    assert error["details"] == {"resource": "active_segments", "limit": 2, "current": 2}
    # an inactive one may be created, not activated
    idle = api.post("/api/segments/", {"name": "d", "active": False}, headers=account.key).get_json()["id"]
    assert_error(api.patch(f"/api/segments/{idle}/", {"active": True}, headers=account.key), 409, "plan_limit_reached")
    first = api.get("/api/segments/", headers=account.key).get_json()["results"][0]["id"]
    assert api.patch(f"/api/segments/{first}/", {"active": False}, headers=account.key).status_code == 200
    assert api.patch(f"/api/segments/{idle}/", {"active": True}, headers=account.key).status_code == 200


def test_connectors_past_the_plan_are_409(api: Api, account: Account) -> None:
    set_plan(api, account, connectors=1)
    segment = api.post("/api/segments/", {"name": "s"}, headers=account.key).get_json()["id"]
    body = {"name": "f", "type": "file", "segment_id": segment, "config": {}}
    assert api.post("/api/connectors/", body, headers=account.bearer).status_code == 201
    error = assert_error(api.post("/api/connectors/", body, headers=account.bearer), 409, "plan_limit_reached")
    assert error["details"] == {"resource": "connectors", "limit": 1, "current": 1}


def test_limits_fail_open_when_the_cache_is_down(settings: Settings) -> None:
    # GIVEN a tenant's own plan in the store, and a cache nobody listens on
    runtime = build_runtime(settings, cache=RedisCache("redis://127.0.0.1:9/0"))
    runtime.documents.save(keys.plan_key(1), plans.default_plan(settings).model_copy(update={"connectors": 3}))
    # THEN a request is admitted without rate headers, events are not counted (nor refused)
    assert admit(runtime, Principal("api_key", None, 1, 1, "member")) is None
    assert quotas.reserve_events(runtime, 1, 10) is None
    # AND the plan itself still comes from the store
    assert plans.plan_of(runtime, 1).connectors == 3


def _ops(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SEGOPS_ENVIRONMENT": "test",
        "SEGOPS_DATA_DIR": str(settings.data_dir),
        "SEGOPS_USES": '["store", "cache"]',
    }
    return subprocess.run(
        [sys.executable, "-m", "segops.ops", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("stack", ["memory"], indirect=True)
def test_the_operator_command_sets_and_shows_a_plan(api: Api, account: Account, settings: Settings) -> None:
    changed = _ops(settings, "plan", "set", account.tenant_slug, "--name", "pro", "--events-per-month", "7")
    assert changed.returncode == 0, changed.stderr
    shown = _ops(settings, "plan", "show", str(account.tenant_id))
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)
    assert (plan["tenant"], plan["slug"]) == (account.tenant_id, account.tenant_slug)
    assert (plan["plan"]["name"], plan["plan"]["events_per_month"]) == ("pro", 7)
    assert plan["plan"]["connectors"] == settings.plan_connectors
    # refused: an unknown tenant, nothing to set, a negative limit
    assert _ops(settings, "plan", "show", "no-such-tenant").returncode == 2
    assert _ops(settings, "plan", "set", account.tenant_slug).returncode == 2
    negative = _ops(settings, "plan", "set", account.tenant_slug, "--connectors", "-1")
    assert negative.returncode == 2 and "connectors" in negative.stderr
