from __future__ import annotations

from typing import Any

import orjson
import pytest
from segops.localstack import LocalStack
from segops.membership.lookup import active_segment_ids, active_segments_key

from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import VISITED, key_with_role

SEGMENT_FIELDS = {
    "id",
    "tenant",
    "name",
    "description",
    "segment_type",
    "definition",
    "active",
    "version",
    "created_at",
    "updated_at",
    "last_computed_at",
    "member_count",
    "compute_status",
    "etag",
    "draft",  # null unless the answer's definition was drafted from a prompt (test_draft_api.py)
}


def create(api: Api, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Segment", "tenant": account.tenant_id, "segment_type": "rule", **fields}
    response = api.post("/api/segments/", body, headers=account.bearer)
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def test_create_get_patch_delete_round_trip(stack: LocalStack) -> None:
    # GIVEN a tenant
    api = Api(stack)
    account = api.signup()
    # WHEN a segment is created exactly as the reference shows
    created = create(
        api,
        account,
        name="High-Value Churners",
        description="Users who spent ≥$500 but haven't returned in 30 days",
    )
    # THEN it carries every documented field, an integer id, no definition and version 0
    assert set(created) == SEGMENT_FIELDS
    assert isinstance(created["id"], int)
    assert created["tenant"] == account.tenant_id
    assert created["definition"] is None and created["version"] == 0 and created["active"] is True
    assert created["member_count"] is None and created["compute_status"] is None
    # WHEN it is renamed and deactivated
    patched = api.patch(
        f"/api/segments/{created['id']}/", {"name": "Churners", "active": False}, headers=account.bearer
    )
    # THEN the change is visible on GET; the version does not move without a definition change
    assert patched.status_code == 200, patched.get_data(as_text=True)
    fetched = api.get(f"/api/segments/{created['id']}/", headers=account.key).get_json()
    assert fetched["name"] == "Churners" and fetched["active"] is False and fetched["version"] == 0
    assert fetched["updated_at"] >= created["updated_at"]
    # WHEN it is deleted
    assert api.delete(f"/api/segments/{created['id']}/", headers=account.bearer).status_code == 204
    # THEN it is gone everywhere
    assert_error(api.get(f"/api/segments/{created['id']}/", headers=account.bearer), 404, "not_found")
    assert api.get("/api/segments/", headers=account.bearer).get_json()["results"] == []


def test_ids_are_integers_and_increase(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    ids = [create(api, account, name=f"s{i}")["id"] for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_list_paginates_with_opaque_cursor_and_filters(stack: LocalStack) -> None:
    # GIVEN seven segments of mixed types and states
    api = Api(stack)
    account = api.signup()
    kinds = ["rule", "ai", "ai", "lookalike", "rule", "ai", "rule"]
    made = [create(api, account, name=f"s{i}", segment_type=k, active=i % 2 == 0) for i, k in enumerate(kinds)]
    # WHEN listed two at a time
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/segments/", headers=account.bearer, query_string=query).get_json()
        seen += [s["id"] for s in page["results"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert not cursor.isdigit()  # opaque, not a bare id
    # THEN every segment appears once, in id order
    assert seen == [s["id"] for s in made] and pages == 4
    # AND filters by type and active (both `type` and `segment_type` spellings)
    rules = api.get("/api/segments/?type=rule", headers=account.bearer).get_json()["results"]
    assert [s["id"] for s in rules] == [s["id"] for s in made if s["segment_type"] == "rule"]
    ai_active = api.get("/api/segments/?segment_type=ai&active=true", headers=account.bearer).get_json()["results"]
    assert [s["id"] for s in ai_active] == [made[2]["id"]]
    inactive = api.get("/api/segments/?active=false", headers=account.bearer).get_json()["results"]
    assert [s["id"] for s in inactive] == [s["id"] for s in made if not s["active"]]
    # AND a forged cursor is a 400 with a pointer
    error = assert_error(api.get("/api/segments/?cursor=bm9wZQ", headers=account.bearer), 400, "validation_failed")
    assert error["details"]["errors"][0]["pointer"] == "/query/cursor"
    # AND so is another tenant's cursor: a position in its own list, foreign here
    first = api.get("/api/segments/", headers=account.bearer, query_string={"limit": "2"}).get_json()
    other = api.signup()
    foreign = api.get("/api/segments/", headers=other.bearer, query_string={"cursor": first["next_cursor"]})
    assert assert_error(foreign, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/query/cursor"


def test_create_validates_with_pointers(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    bad_type = api.post("/api/segments/", {"name": "x", "segment_type": "magic"}, headers=account.bearer)
    assert assert_error(bad_type, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/segment_type"
    no_name = api.post("/api/segments/", {"segment_type": "rule"}, headers=account.bearer)
    assert assert_error(no_name, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/name"
    unknown = api.post("/api/segments/", {"name": "x", "colour": "red"}, headers=account.bearer)
    assert assert_error(unknown, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/colour"


def _cached_ids(stack: LocalStack, key: str) -> list[int] | None:
    """The ids the entry holds, or None when it holds none (absent, or invalidated: a tombstone)."""
    raw = stack.runtime.cache.get(key)
    return orjson.loads(raw) if raw is not None and raw.startswith(b"[") else None


def test_writes_invalidate_the_active_segments_cache_key(stack: LocalStack) -> None:
    # GIVEN the active-segment index cached for the membership lookup
    api = Api(stack)
    account = api.signup()
    runtime = stack.runtime
    first = create(api, account, name="a")
    key = active_segments_key(account.tenant_id)
    assert active_segment_ids(runtime, account.tenant_id) == {first["id"]}
    assert _cached_ids(stack, key) == [first["id"]]
    # WHEN a segment is created THEN the key is invalidated and the index includes it
    second = create(api, account, name="b")
    assert _cached_ids(stack, key) is None
    assert active_segment_ids(runtime, account.tenant_id) == {first["id"], second["id"]}
    # WHEN one is deactivated THEN the cached index drops it at once
    api.patch(f"/api/segments/{first['id']}/", {"active": False}, headers=account.bearer)
    assert _cached_ids(stack, key) is None
    assert active_segment_ids(runtime, account.tenant_id) == {second["id"]}
    # WHEN the other is deleted THEN it disappears as well
    api.delete(f"/api/segments/{second['id']}/", headers=account.bearer)
    assert _cached_ids(stack, key) is None
    assert active_segment_ids(runtime, account.tenant_id) == set()


def test_viewer_reads_but_cannot_write(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    viewer = key_with_role(api, account, "viewer")
    member = key_with_role(api, account, "member")
    made = create(api, account)
    path = f"/api/segments/{made['id']}/"
    assert api.get("/api/segments/", headers=viewer).status_code == 200
    assert api.get(path, headers=viewer).status_code == 200
    assert api.get(f"{path}versions/", headers=viewer).status_code == 200
    assert_error(api.post("/api/segments/", {"name": "x"}, headers=viewer), 403, "forbidden")
    assert_error(api.patch(path, {"name": "x"}, headers=viewer), 403, "forbidden")
    assert_error(api.delete(path, headers=viewer), 403, "forbidden")
    # a member writes
    assert api.post("/api/segments/", {"name": "x"}, headers=member).status_code == 201
    assert api.patch(path, {"name": "y"}, headers=member).status_code == 200
    assert api.delete(path, headers=member).status_code == 204


def test_other_tenants_segments_are_404(stack: LocalStack) -> None:
    # GIVEN two tenants, one segment each
    api = Api(stack)
    alice, bob = api.signup(), api.signup()
    theirs = create(api, bob, name="bob's")
    path = f"/api/segments/{theirs['id']}/"
    # THEN alice can neither see, change, version-list nor delete bob's segment
    for response in (
        api.get(path, headers=alice.bearer),
        api.get(path, headers=alice.key),
        api.patch(path, {"name": "mine"}, headers=alice.bearer),
        api.delete(path, headers=alice.key),
        api.get(f"{path}versions/", headers=alice.bearer),
    ):
        assert_error(response, 404, "not_found")
    assert api.get("/api/segments/", headers=alice.bearer).get_json()["results"] == []
    # AND naming bob's tenant explicitly does not help
    assert_error(api.get(f"{path}?tenant={bob.tenant_id}", headers=alice.bearer), 404)
    assert_error(api.get(path, headers={**alice.key, "X-SegOps-Tenant": str(bob.tenant_id)}), 404)
    assert_error(api.post("/api/segments/", {"name": "sneaky", "tenant": bob.tenant_id}, headers=alice.bearer), 404)
    assert_error(api.post("/api/segments/", {"name": "sneaky", "tenant": bob.tenant_slug}, headers=alice.key), 404)
    # AND bob's segment is untouched
    assert api.get(path, headers=bob.bearer).get_json()["name"] == "bob's"
    assert [s["name"] for s in api.get("/api/segments/", headers=bob.bearer).get_json()["results"]] == ["bob's"]


def test_bodies_take_json_types_and_patches_refuse_null(stack: LocalStack) -> None:
    """`"active": "no"` is a string, not false; `"limit": "5"` a string, not 5; and a PATCH field sent as
    null is refused (nothing can be unset) instead of being read as left out."""
    api = Api(stack)
    account = api.signup()
    segment = create(api, account)
    path = f"/api/segments/{segment['id']}/"
    lax = api.post("/api/segments/", {"name": "x", "active": "no"}, headers=account.bearer)
    assert assert_error(lax, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/active"
    assert_error(api.patch(path, {"active": 0}, headers=account.bearer), 400, "validation_failed")
    preview = api.post(
        "/api/segments/preview/", {"definition": segment["definition"] or {}, "limit": "5"}, headers=account.bearer
    )
    assert assert_error(preview, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/limit"
    for field in ("name", "description", "active", "definition", "prompt"):
        error = assert_error(api.patch(path, {field: None}, headers=account.bearer), 400, "validation_failed")
        assert error["message"] == f"/{field}: may not be null"
        assert error["details"]["errors"][0]["type"] == "null"
    assert api.get(path, headers=account.bearer).get_json()["etag"] == segment["etag"]
    # AND the published schema says what is taken: a patch's fields are optional, never nullable
    schema = api.get("/api/openapi.json").get_json()["components"]["schemas"]
    for name in ("SegmentPatch", "ConnectorPatch"):
        for prop in schema[name]["properties"].values():
            assert {"type": "null"} not in prop.get("anyOf", []) and "default" not in prop, (name, prop)
    assert schema["SegmentCreate"]["properties"]["active"] == {"default": True, "title": "Active", "type": "boolean"}


def test_a_segment_created_with_a_definition_appears_whole_or_not_at_all(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(stack)
    account = api.signup()
    body = {"name": "Viewers", "definition": VISITED}
    # GIVEN the store failing on the second of the create's two writes (a segment and its version 1)
    put = stack.runtime.store.put
    writes: list[str] = []

    def second_write_fails(key: str, *args: Any, **kwargs: Any) -> Any:
        if "/segments/" in key or "/segment-versions/" in key:
            writes.append(key)
            if len(writes) == 2:
                raise ConnectionError("store unreachable")
        return put(key, *args, **kwargs)

    monkeypatch.setattr(stack.runtime.store, "put", second_write_fails)
    # WHEN the create fails THEN it is a 503 and no segment exists (none without its definition)
    assert_error(api.post("/api/segments/", body, headers=account.bearer), 503, "service_unavailable")
    monkeypatch.undo()
    assert api.get("/api/segments/", headers=account.bearer).get_json()["results"] == []
    # AND a create that goes through has its definition as version 1
    made = api.post("/api/segments/", body, headers=account.bearer).get_json()
    assert (made["definition"], made["version"]) == (VISITED, 1)
    versions = api.get(f"/api/segments/{made['id']}/versions/", headers=account.bearer).get_json()["results"]
    assert [(v["version"], v["definition"]) for v in versions] == [(1, VISITED)]
