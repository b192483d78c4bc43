"""A cache-miss lookup racing a compute must not cache the membership the compute just replaced
(`segops.membership.lookup`: versioned fills). The race is driven deterministically: the compute
commits and invalidates exactly between the lookup's warehouse read and its cache fill."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from segops.compute import engine
from segops.config import Settings
from segops.localstack import LocalStack
from segops.membership import lookup
from segops.warehouse.base import QueryResult, Warehouse

from tests.support.api import Api
from tests.support.segment_api import VISITED, defined_segment, page_views

NOW = datetime.now(UTC).replace(microsecond=0)


class BetweenReadAndFill:
    """The stack's warehouse, running `interleave` once, right after the first membership read returned
    (so that read's answer predates whatever `interleave` commits)."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.interleave: Callable[[], None] | None = None

    def query(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> QueryResult:
        result = self.inner.query(sql, params, tenant_id)
        if self.interleave is not None and "FROM user_memberships" in sql:
            interleave, self.interleave = self.interleave, None
            interleave()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["memory", "valkey"])
def stack(request: pytest.FixtureRequest, settings: Settings) -> Any:
    if request.param == "valkey":
        settings = settings.model_copy(update={"cache": "redis", "redis_url": request.getfixturevalue("valkey_url")})
    local = LocalStack(settings)
    try:
        yield local
    finally:
        local.stop()


def test_a_miss_read_before_a_compute_is_not_cached_after_its_invalidation(stack: LocalStack) -> None:
    # GIVEN a computed segment that user-1 is not in yet, and no cached lookup for user-1
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    page_views(stack, tenant, ["someone-else"], NOW - timedelta(hours=1))
    segment = defined_segment(api, account, VISITED, "visitors")
    [first] = engine.compute(stack.runtime, tenant, [engine.Request(segment, "full")], NOW)
    assert first.status == "succeeded", first.error
    racing = BetweenReadAndFill(stack.runtime.warehouse)
    stack.runtime.warehouse = racing  # type: ignore[assignment]

    def user_enters() -> None:
        # user-1 visits; a compute commits their entry and invalidates their cached lookup
        page_views(stack, tenant, ["user-1"], NOW - timedelta(minutes=30))
        [outcome] = engine.compute(stack.runtime, tenant, [engine.Request(segment, "full")], NOW)
        assert outcome.status == "succeeded", outcome.error

    racing.interleave = user_enters
    # WHEN a lookup misses, reads "no segments", and the compute lands before it fills the cache
    assert lookup.user_segments(stack.runtime, tenant, "user-1") == ([], False)
    assert racing.interleave is None, "the compute ran between the read and the fill"
    # THEN its stale answer was not cached: the next lookup reads the committed membership
    assert lookup.user_segments(stack.runtime, tenant, "user-1") == ([segment], False)
    # AND that one, read after the invalidation, is cached
    assert lookup.user_segments(stack.runtime, tenant, "user-1") == ([segment], True)


class ListBetweenReadAndFill:
    """The stack's store, running `interleave` once, right after the first listing of segments."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.interleave: Callable[[], None] | None = None

    def list(self, prefix: str) -> list[str]:
        found: list[str] = self.inner.list(prefix)
        if self.interleave is not None and "/segments/" in prefix:
            interleave, self.interleave = self.interleave, None
            interleave()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_active_set_read_before_a_segment_write_is_not_cached_after_it(stack: LocalStack) -> None:
    # GIVEN one active segment, and no cached active set
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    first = defined_segment(api, account, VISITED, "first")
    racing = ListBetweenReadAndFill(stack.runtime.store)
    stack.runtime.store = racing  # type: ignore[assignment]
    second: list[int] = []
    racing.interleave = lambda: second.append(defined_segment(api, account, VISITED, "second"))
    # WHEN a miss lists the segments, and a second segment is created before it fills the cache
    assert lookup.active_segment_ids(stack.runtime, tenant) == {first}
    assert second, "the segment was created between the read and the fill"
    # THEN the stale set was not cached: the next read sees both, and caches them
    assert lookup.active_segment_ids(stack.runtime, tenant) == {first, second[0]}
    assert stack.runtime.cache.get(lookup.active_segments_key(tenant)) == orjson.dumps(sorted([first, second[0]]))


def test_an_invalidation_tombstone_is_a_miss_and_is_replaced_by_the_next_fill(stack: LocalStack) -> None:
    # GIVEN a cached lookup, then an invalidation of it
    runtime = stack.runtime
    assert lookup.user_segments(runtime, 1, "u") == ([], False)
    assert lookup.user_segments(runtime, 1, "u") == ([], True)
    lookup.invalidate_users(runtime, 1, ["u", "v"])
    # THEN the entry is a miss, filled again by the next lookup, and served from the cache after that
    assert lookup.user_segments(runtime, 1, "u") == ([], False)
    assert lookup.user_segments(runtime, 1, "u") == ([], True)
    # AND two invalidations leave different tombstones (a fill seeing the first fails after the second)
    lookup.invalidate_users(runtime, 1, ["u"])
    first = runtime.cache.get(lookup.membership_key(1, "u"))
    lookup.invalidate_users(runtime, 1, ["u"])
    assert first is not None and runtime.cache.swap(lookup.membership_key(1, "u"), first, b"[]", 60) is False
