from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from segops.compute import engine
from segops.localstack import LocalStack
from segops.membership import lookup

from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import VISITED, defined_segment, event_row, insert_events, key_with_role, page_views

NOW = datetime.now(UTC).replace(microsecond=0)


def compute_now(stack: LocalStack, tenant_id: int, segment_id: int, at: datetime) -> None:
    [outcome] = engine.compute(stack.runtime, tenant_id, [engine.Request(segment_id, "full")], at)
    assert outcome.status == "succeeded", outcome.error


def page_all(
    api: Api, account: Account, segment_id: int, limit: int, cursor: str | None = None, pages: int | None = None
) -> list[str]:
    """User ids of `pages` pages (default: to the end), following next_cursor from `cursor`, pages of `limit`."""
    seen: list[str] = []
    while pages is None or pages > 0:
        pages = None if pages is None else pages - 1
        query: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get(f"/api/segments/{segment_id}/members/", headers=account.bearer, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert len(body["results"]) <= limit
        seen += [r["user_id"] for r in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    return seen


def test_10007_members_each_exactly_once_in_order_at_every_limit(stack: LocalStack) -> None:
    # GIVEN 10,007 members of one computed segment
    api = Api(stack)
    account = api.signup()
    users = [f"user-{i:05d}" for i in range(10_007)]
    page_views(stack, account.tenant_id, users, NOW - timedelta(hours=1))
    segment_id = defined_segment(api, account, VISITED)
    compute_now(stack, account.tenant_id, segment_id, NOW)
    # WHEN paged with the largest, the default-sized and the smallest limit
    first = api.get(f"/api/segments/{segment_id}/members/?limit=10000", headers=account.bearer).get_json()
    # THEN each page reports the count, results carry user_id + computed_at, and every member comes once, in order
    assert first["count"] == 10_007 and len(first["results"]) == 10_000
    assert set(first["results"][0]) == {"user_id", "computed_at"}
    assert first["results"][0]["computed_at"].startswith(NOW.strftime("%Y-%m-%dT%H:%M:%S"))
    assert page_all(api, account, segment_id, 10_000) == users
    assert page_all(api, account, segment_id, 100) == users
    # (limit 1 walks the first pages and, from the 10,000-row page's cursor, the tail: 10,007 requests
    # would cost minutes and exercise nothing the walks at 100 and the tail do not)
    assert page_all(api, account, segment_id, 1, pages=25) == users[:25]
    assert page_all(api, account, segment_id, 1, cursor=first["next_cursor"]) == users[10_000:]
    # AND the default page is 100, the maximum 10,000
    default = api.get(f"/api/segments/{segment_id}/members/", headers=account.bearer).get_json()
    assert len(default["results"]) == 100
    too_big = api.get(f"/api/segments/{segment_id}/members/?limit=10001", headers=account.bearer)
    assert assert_error(too_big, 400)["details"]["errors"][0]["pointer"] == "/query/limit"


def test_a_compute_landing_mid_pagination_does_not_break_the_cursor(stack: LocalStack) -> None:
    # GIVEN 300 users who viewed a page and never ordered: "visitors who never ordered"
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    users = [f"u{i:03d}" for i in range(300)]
    page_views(stack, tenant, users, NOW - timedelta(hours=2))
    never_ordered = {
        "logic": "AND",
        "conditions": [
            {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1},
            {"type": "event_count", "event_type": "order_placed", "operator": "eq", "value": 0},
        ],
    }
    segment_id = defined_segment(api, account, never_ordered)
    compute_now(stack, tenant, segment_id, NOW - timedelta(minutes=10))
    # WHEN a client reads the first page of 100
    path = f"/api/segments/{segment_id}/members/"
    first = api.get(path, headers=account.bearer, query_string={"limit": 100}).get_json()
    assert [r["user_id"] for r in first["results"]] == users[:100]
    # AND then a compute lands in which u150..u199 ordered (exit) and a0..a9 / u250x arrived (enter)
    insert_events(stack, [event_row(tenant, u, "order_placed", NOW - timedelta(minutes=5)) for u in users[150:200]])
    newcomers = [f"a{i}" for i in range(10)] + [f"u250x{i}" for i in range(5)]
    page_views(stack, tenant, newcomers, NOW - timedelta(minutes=5))
    compute_now(stack, tenant, segment_id, NOW)
    # THEN the old cursor continues the snapshot it started on: no gaps, no duplicates, old count
    rest = page_all(api, account, segment_id, 100, first["next_cursor"])
    assert [r["user_id"] for r in first["results"]] + rest == users
    continued = api.get(path, headers=account.bearer, query_string={"limit": 5, "cursor": first["next_cursor"]})
    assert continued.get_json()["count"] == 300
    # AND a fresh pagination sees the new compute
    fresh = page_all(api, account, segment_id, 100)
    assert fresh == sorted(set(users) - set(users[150:200]) | set(newcomers))
    assert api.get(path, headers=account.bearer).get_json()["count"] == len(fresh)


def test_members_before_any_compute_is_empty(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    segment_id = defined_segment(api, account, VISITED)
    body = api.get(f"/api/segments/{segment_id}/members/", headers=account.bearer).get_json()
    assert body == {"results": [], "next_cursor": None, "count": 0}


def test_members_roles_isolation_and_bad_cursor(stack: LocalStack) -> None:
    api = Api(stack)
    owner, stranger = api.signup(), api.signup()
    page_views(stack, owner.tenant_id, ["x1", "x2", "x3"])
    segment_id = defined_segment(api, owner, VISITED)
    compute_now(stack, owner.tenant_id, segment_id, NOW)
    path = f"/api/segments/{segment_id}/members/"
    viewer = key_with_role(api, owner, "viewer")
    assert api.get(path, headers=viewer).get_json()["count"] == 3
    assert_error(api.get(path, headers=stranger.bearer), 404, "not_found")
    assert_error(api.get(path, headers=stranger.key), 404, "not_found")
    assert_error(api.get("/api/segments/999999/members/", headers=owner.bearer), 404)
    bad = api.get(path, headers=owner.bearer, query_string={"cursor": "not-a-cursor"})
    assert assert_error(bad, 400)["details"]["errors"][0]["pointer"] == "/query/cursor"
    # AND a cursor of another segment's members, or of another list, is refused too
    cursor = api.get(path, headers=owner.bearer, query_string={"limit": 1}).get_json()["next_cursor"]
    other = defined_segment(api, owner, VISITED, "other")
    compute_now(stack, owner.tenant_id, other, NOW)
    foreign = api.get(f"/api/segments/{other}/members/", headers=owner.bearer, query_string={"cursor": cursor})
    assert assert_error(foreign, 400)["details"]["errors"][0]["pointer"] == "/query/cursor"
    assert_error(api.get("/api/segments/", headers=owner.bearer, query_string={"cursor": cursor}), 400)


def test_deleted_or_deactivated_segments_leave_membership_lookups_at_once(stack: LocalStack) -> None:
    # GIVEN a user who is a member of two computed segments, with the lookup already cached
    api = Api(stack)
    account = api.signup()
    tenant = account.tenant_id
    page_views(stack, tenant, ["user-123"], NOW - timedelta(hours=1))
    first = defined_segment(api, account, VISITED, "first")
    second = defined_segment(api, account, VISITED, "second")
    compute_now(stack, tenant, first, NOW)
    compute_now(stack, tenant, second, NOW)
    assert lookup.user_segments(stack.runtime, tenant, "user-123") == ([first, second], False)
    assert lookup.user_segments(stack.runtime, tenant, "user-123") == ([first, second], True)
    # WHEN one is deactivated and the other deleted through the API
    api.patch(f"/api/segments/{first}/", {"active": False}, headers=account.bearer)
    assert lookup.user_segments(stack.runtime, tenant, "user-123") == ([second], True)
    api.delete(f"/api/segments/{second}/", headers=account.bearer)
    # THEN the very next lookup, still served from the per-user cache entry, shows neither
    assert lookup.user_segments(stack.runtime, tenant, "user-123") == ([], True)
    # AND reactivating brings the first back without a recompute
    api.patch(f"/api/segments/{first}/", {"active": True}, headers=account.bearer)
    assert lookup.user_segments(stack.runtime, tenant, "user-123") == ([first], True)


def test_a_membership_lookup_takes_user_ids_as_ingestion_does(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    # An id ingestion would refuse (control characters, empty, past 256 characters) is refused here
    # too, at its field, rather than answered "in no segment"
    for user_id in ["a%0Ab", "%00", "", "u" * 257]:
        response = api.get(f"/api/segments/membership/?user_id={user_id}", headers=account.key)
        assert assert_error(response, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/query/user_id"
    # and any id ingestion takes is looked up
    for user_id in ["user-1", "%E7%94%A8%E6%88%B7", "a%20b", "u" * 256]:
        assert api.get(f"/api/segments/membership/?user_id={user_id}", headers=account.key).status_code == 200
