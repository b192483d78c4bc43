"""Every key SegOps writes into Valkey carries an expiry (docs/operations.md, "Valkey memory and
eviction"): under Memorystore's `volatile-lru` only keys with a TTL can be evicted, so one key
without it would make a full instance refuse writes instead of evicting."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import redis
from segops.config import Settings
from segops.localstack import LocalStack

from tests.support.api import Api
from tests.support.segment_api import VISITED, compute, defined_segment


@pytest.fixture
def valkey(valkey_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_every_key_the_stack_writes_into_valkey_expires(
    settings: Settings, valkey_url: str, valkey: redis.Redis
) -> None:
    stack = LocalStack(settings.model_copy(update={"cache": "redis", "redis_url": valkey_url}))
    try:
        api = Api(stack)
        # GIVEN a tenant that logs in, sends events through the native and the Segment endpoints,
        # defines and computes a segment, reads memberships and runs the sandbox
        owner = api.signup()
        login = api.post("/api/auth/token/", {"email": owner.email, "password": owner.password})
        assert login.status_code == 200, login.get_data(as_text=True)
        for body in (
            {"user_id": "u1", "event_type": "page_viewed", "message_id": "m-1"},
            {"user_id": "u2", "event_type": "order_placed", "payload": {"total": 12.5}},
        ):
            assert api.post("/api/ingestion/track/", body, headers=owner.key).status_code == 202
        batch = {"events": [{"user_id": f"b{i}", "event_type": "page_viewed"} for i in range(20)]}
        assert api.post("/api/ingestion/track/batch/", batch, headers=owner.key).status_code == 202
        basic = base64.b64encode(f"{owner.api_key}:".encode()).decode()
        segment_call = {"userId": "s1", "event": "Order Completed", "messageId": "seg-1"}
        sent = api.post("/v1/track", segment_call, headers={"Authorization": f"Basic {basic}"})
        assert sent.status_code == 200, sent.get_data(as_text=True)
        stack.bus.drain()
        segment_id = defined_segment(api, owner, VISITED)
        compute(api, owner, segment_id)
        for user in ("u1", "b3", "nobody"):
            looked = api.get(f"/api/segments/membership/?user_id={user}", headers=owner.key)
            assert looked.status_code == 200, looked.get_data(as_text=True)
        sandbox = api.post(
            "/api/explorer/sandbox/publish/", {"user_id": "u9", "event_type": "page_viewed"}, headers=owner.bearer
        )
        assert sandbox.status_code == 200, sandbox.get_data(as_text=True)
        stack.bus.drain()
    finally:
        stack.stop()
    # THEN Valkey holds keys of several kinds, and every one of them expires
    keys = list(valkey.scan_iter(count=1000))
    kinds = {key.decode().split(":", 1)[0] for key in keys}
    assert {"apikey", "membership", "plan", "quota", "ratelimit", "segments", "throttle"} <= kinds, kinds
    without_expiry = [key for key in keys if valkey.pttl(key) < 0]
    assert without_expiry == [], without_expiry
