"""Lookalike segments through HTTP and the bus: validation, preview, compute, and everything that
reads membership (members, lookup, exports, membership-changes) working unchanged."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from segops.config import Settings
from segops.dsl import sources
from segops.localstack import LocalStack
from segops.messages import MembershipChanged

from tests.integration.exports.test_exports import export
from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import compute, defined_segment, event_row, insert_events, members

COHORT = [f"c{i:03d}" for i in range(60)]
OTHERS = [f"o{i:03d}" for i in range(180)]
SEED = COHORT[:12]  # 20% of the hidden cohort
INVITED = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "partner_invited", "operator": "gte", "value": 1}],
}


def planted(stack: LocalStack, account: Account) -> None:
    """GIVEN a hidden cohort sharing a behaviour (webinars, docs, the enterprise plan) among random users,
    20% of whom a partner invited"""
    rng = random.Random(7)
    now = datetime.now(UTC) - timedelta(hours=1)
    rows = []
    for user in COHORT + OTHERS:
        cohort = user in COHORT
        plan = "enterprise" if cohort and rng.random() < 0.8 else rng.choice(["free", "pro", "enterprise"])
        rows.append(event_row(account.tenant_id, user, "context_identified", now - timedelta(days=30), {"plan": plan}))
        webinars = rng.randint(3, 6) if cohort else rng.choice([0, 0, 0, 0, 1])
        for _ in range(webinars):
            rows.append(
                event_row(account.tenant_id, user, "webinar_attended", now - timedelta(days=rng.uniform(0, 40)))
            )
        for _ in range(rng.randint(2, 8)):
            path = "/docs" if cohort and rng.random() < 0.7 else rng.choice(["/home", "/blog", "/pricing"])
            at = now - timedelta(days=rng.uniform(0, 60))
            rows.append(event_row(account.tenant_id, user, "page_viewed", at, {"path": path}))
        if rng.random() < 0.4:
            total = rng.uniform(10, 300)
            rows.append(event_row(account.tenant_id, user, "order_placed", now - timedelta(days=5), {"total": total}))
        if user in SEED:
            rows.append(event_row(account.tenant_id, user, "partner_invited", now - timedelta(days=50)))
    insert_events(stack, rows)


def seeded(stack: LocalStack) -> tuple[Api, Account, int]:
    """The planted tenant, and its computed seed segment: the users a partner invited."""
    api = Api(stack)
    account = api.signup()
    planted(stack, account)
    seed_id = defined_segment(api, account, INVITED, name="Partner invitees")
    compute(api, account, seed_id)
    return api, account, seed_id


def lookalike(api: Api, account: Account, definition: dict[str, Any]) -> Any:
    return api.post(
        "/api/segments/",
        {"name": "Like partners' invitees", "segment_type": "lookalike", "definition": definition},
        headers=account.bearer,
    )


def test_a_lookalike_finds_the_hidden_cohort_and_serves_every_membership_reader(stack: LocalStack) -> None:
    api, account, seed_id = seeded(stack)
    heard: list[MembershipChanged] = []
    stack.bus.subscribe(
        "membership-changes", "test", lambda m: heard.append(MembershipChanged.model_validate_json(m.data))
    )
    definition = {"seed_segment_id": seed_id, "size": 30}
    # WHEN the lookalike is previewed
    preview = api.post("/api/segments/lookalike/preview/", {"definition": definition}, headers=account.bearer)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    shown = preview.get_json()
    # THEN it would hold 30 users, the 12 seed users trained it and every other user got a score
    assert (shown["estimated_size"], shown["seed_users"], shown["scored_users"]) == (30, 12, 228)
    assert [b["min_score"] for b in shown["histogram"]] == [i / 10 for i in range(10)]
    assert sum(b["users"] for b in shown["histogram"]) == 228
    # WHEN it is created and computed through the API and the bus
    created = lookalike(api, account, definition)
    assert created.status_code == 201, created.get_data(as_text=True)
    segment_id = created.get_json()["id"]
    status = compute(api, account, segment_id)
    # THEN its 30 members exclude the seed, and most are the hidden cohort (base rate 48/228 = 21%)
    found = [m["user_id"] for m in members(api, account, segment_id)]
    assert len(found) == 30 == status["member_count"] == status["entered_count"]
    assert not set(found) & set(SEED)
    precision = len(set(found) & set(COHORT)) / len(found)
    assert precision >= 0.8, (precision, found)
    # AND the membership lookup, the connectors' diff message and an export see exactly those members
    lookup = api.get(f"/api/segments/membership/?user_id={found[0]}", headers=account.key).get_json()
    assert segment_id in lookup["segment_ids"]
    assert [(h.segment_id, h.entered_count, h.exited_count) for h in heard] == [(segment_id, 30, 0)]
    finished, csv = export(api, account, segment_id, "csv")
    assert finished["row_count"] == 30
    assert sorted(line.split(",")[0].strip('"') for line in csv.decode().splitlines()[1:]) == sorted(found)


def test_a_feature_pass_split_into_ranges_of_users_scores_everyone_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, account, seed_id = seeded(stack)
    definition = {"seed_segment_id": seed_id, "size": 30}

    def preview() -> Any:
        response = api.post("/api/segments/lookalike/preview/", {"definition": definition}, headers=account.bearer)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    whole = preview()
    # WHEN the tenant is too large for one pass's memory: the features are staged per range of users
    points = ["c030", "o000", "o100"]  # a range within the seed, one across the cohort's end, two of others
    monkeypatch.setattr(sources, "split_points", lambda *_: points)
    warehouse = stack.runtime.warehouse
    command, staged = warehouse.command, []

    def recorded(sql: str, *args: Any, **kwargs: Any) -> None:
        staged.extend([sql] if sql.startswith("INSERT INTO lookalike_features") else [])
        command(sql, *args, **kwargs)

    monkeypatch.setattr(warehouse, "command", recorded)
    split = preview()
    # THEN one statement per range, and every user scored exactly once, to the same model and scores
    assert len(staged) == len(points) + 1
    assert split == whole and (split["seed_users"], split["scored_users"]) == (12, 228)


def test_a_seed_that_publishes_recomputes_its_lookalikes(stack: LocalStack) -> None:
    api, account, seed_id = seeded(stack)
    segment_id = lookalike(api, account, {"seed_segment_id": seed_id, "min_score": 0.5}).get_json()["id"]
    first = compute(api, account, segment_id)
    # WHEN the seed gains members and is recomputed
    later = datetime.now(UTC) - timedelta(minutes=5)
    insert_events(stack, [event_row(account.tenant_id, u, "partner_invited", later) for u in COHORT[12:24]])
    compute(api, account, seed_id)
    # THEN the lookalike was recomputed after it (its members never include the seed)
    again = api.get(f"/api/segments/{segment_id}/compute/", headers=account.bearer).get_json()
    assert again["status"] == "succeeded" and again["compute_id"] != first["compute_id"]
    assert not {m["user_id"] for m in members(api, account, segment_id)} & set(COHORT[:24])


def test_invalid_lookalikes_are_refused_with_clear_messages(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    planted(stack, account)
    seed_id = defined_segment(api, account, INVITED, name="Partner invitees")
    # an uncomputed seed is a conflict
    error = assert_error(lookalike(api, account, {"seed_segment_id": seed_id, "size": 5}), 409, "conflict")
    assert "has not been computed" in error["message"]
    compute(api, account, seed_id)
    # a missing seed, both or neither of size and min_score, unknown fields: 400 with pointers
    error = assert_error(lookalike(api, account, {"seed_segment_id": 999_999, "size": 5}), 400)
    assert error["details"]["errors"][0]["pointer"] == "/definition/seed_segment_id"
    assert_error(lookalike(api, account, {"seed_segment_id": seed_id}), 400, "validation_failed")
    assert_error(lookalike(api, account, {"seed_segment_id": seed_id, "size": 5, "min_score": 0.5}), 400)
    error = assert_error(lookalike(api, account, {"seed_segment_id": seed_id, "size": 5, "k": 1}), 400)
    assert error["details"]["errors"][0]["pointer"] == "/definition/k"
    # a lookalike of a lookalike
    first = lookalike(api, account, {"seed_segment_id": seed_id, "size": 5}).get_json()["id"]
    compute(api, account, first)
    error = assert_error(lookalike(api, account, {"seed_segment_id": first, "size": 5}), 400)
    assert "cannot be a lookalike" in error["message"]
    # an empty seed
    nobody = {
        "logic": "AND",
        "conditions": [{"type": "event_count", "event_type": "never_sent", "operator": "gte", "value": 1}],
    }
    empty_id = defined_segment(api, account, nobody, name="Nobody")
    compute(api, account, empty_id)
    assert_error(lookalike(api, account, {"seed_segment_id": empty_id, "size": 5}), 409, "conflict")
    # another tenant's segment is no seed
    other = api.signup()
    error = assert_error(lookalike(api, other, {"seed_segment_id": seed_id, "size": 5}), 400)
    assert error["message"] == f"/definition/seed_segment_id: no segment {seed_id} in this tenant"


def test_the_scheduler_retrains_a_lookalike_once_it_is_due(settings: Settings) -> None:
    for refresh, retrained in ((60.0, False), (0.0, True)):
        stack = LocalStack(settings.model_copy(update={"lookalike_refresh_minutes": refresh}))
        try:
            api = Api(stack)
            account = api.signup()
            planted(stack, account)
            seed_id = defined_segment(api, account, INVITED, name="Partner invitees")
            compute(api, account, seed_id)
            segment_id = lookalike(api, account, {"seed_segment_id": seed_id, "size": 10}).get_json()["id"]
            first = compute(api, account, segment_id)
            # WHEN the scheduler ticks
            stack.publish_schedules()
            stack.bus.drain()
            # THEN the lookalike is retrained only when its last compute is older than the refresh period
            again = api.get(f"/api/segments/{segment_id}/compute/", headers=account.bearer).get_json()
            assert again["status"] == "succeeded"
            assert (again["compute_id"] != first["compute_id"]) is retrained, refresh
        finally:
            stack.stop()


def test_a_lookalike_is_the_same_for_the_same_data_whatever_else_is_being_scored(stack: LocalStack) -> None:
    api, account, seed_id = seeded(stack)
    # GIVEN other stages in the scratch table with vectors of another length (an older vocabulary, another
    # tenant's), which a filter on the scores may meet before the tenant and stage filters drop them
    tenants = (account.tenant_id, account.tenant_id + 1_000)
    stack.runtime.warehouse.insert(
        "lookalike_features",
        ["tenant_id", "compute_id", "user_id", "seed", "features"],
        [(t, stage, f"x{i}", i % 2, [1.0, 2.0, 3.0]) for t in tenants for stage in ("0", "z") for i in range(50)],
    )
    # WHEN a threshold lookalike is previewed THEN it is scored (a filter on the score met the other
    # stage's vectors: arrays of unequal sizes, a 500)
    threshold = {"definition": {"seed_segment_id": seed_id, "min_score": 0.5}}
    scored = api.post("/api/segments/lookalike/preview/", threshold, headers=account.bearer)
    assert scored.status_code == 200, scored.get_data(as_text=True)
    # WHEN a lookalike is previewed twice, created, and computed twice with no new data
    definition = {"seed_segment_id": seed_id, "size": 30}
    shown = [
        api.post("/api/segments/lookalike/preview/", {"definition": definition}, headers=account.bearer)
        for _ in range(2)
    ]
    assert [p.status_code for p in shown] == [200, 200], shown[0].get_data(as_text=True)
    assert shown[0].get_json() == shown[1].get_json()
    created = lookalike(api, account, definition)
    assert created.status_code == 201, created.get_data(as_text=True)
    segment_id = created.get_json()["id"]
    compute(api, account, segment_id)
    first = sorted(m["user_id"] for m in members(api, account, segment_id))
    assert api.post(f"/api/segments/{segment_id}/compute/", headers=account.bearer).status_code == 202
    stack.bus.drain()
    again = api.get(f"/api/segments/{segment_id}/compute/", headers=account.bearer).get_json()
    # THEN nothing moves: the same members, no one entered or exited, and the previews said so
    assert again["status"] == "succeeded" and (again["entered_count"], again["exited_count"]) == (0, 0)
    assert sorted(m["user_id"] for m in members(api, account, segment_id)) == first
    assert len(first) == 30 and not set(first) & set(SEED)


def test_a_lookalike_definition_takes_json_types_only(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    for field, value in (("seed_segment_id", "1"), ("size", True), ("exclude_seed", "no"), ("lookback_days", "30")):
        definition = {"seed_segment_id": 1, "size": 5, field: value}
        error = assert_error(lookalike(api, account, definition), 400, "validation_failed")
        assert error["details"]["errors"][0]["pointer"] == f"/definition/{field}"
