"""`POST /api/segments/ai/draft/` and `ai` segments through HTTP, grounded in each tenant's own data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segops.localstack import LocalStack

from tests.support.api import Account, Api, assert_error
from tests.support.segment_api import compute, event_row, insert_events, members

DRAFT = "/api/segments/ai/draft/"


def shop(stack: LocalStack, account: Account) -> None:
    """GIVEN a tenant whose data shows `order_placed` with totals, `/pricing` views and plans"""
    now = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        event_row(account.tenant_id, "ann", "page_viewed", now, {"path": "/pricing"}),
        event_row(account.tenant_id, "ann", "page_viewed", now, {"path": "/pricing"}),
        event_row(account.tenant_id, "ann", "context_identified", now, {"plan": "pro"}),
        event_row(account.tenant_id, "bob", "page_viewed", now, {"path": "/pricing"}),
        event_row(account.tenant_id, "bob", "context_identified", now, {"plan": "free"}),
        event_row(account.tenant_id, "cid", "order_placed", now, {"total": 700.0, "currency": "EUR"}),
        event_row(account.tenant_id, "cid", "context_identified", now, {"plan": "pro"}),
    ]
    insert_events(stack, rows)


def test_draft_grounds_names_in_the_tenant_vocabulary_and_explains_each_condition(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    # WHEN a marketer describes an audience in their own words
    prompt = "visited the pricing page at least 2 times and on the pro plan, or spent over $500"
    response = api.post(DRAFT, {"prompt": prompt}, headers=account.bearer)
    # THEN the definition uses the tenant's event type, payload value and property, one line per condition
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["provider"] == "offline"
    assert body["definition"] == {
        "logic": "OR",
        "conditions": [
            {
                "logic": "AND",
                "conditions": [
                    {
                        "type": "event_count",
                        "event_type": "page_viewed",
                        "operator": "gte",
                        "value": 2,
                        "where": [{"property": "path", "operator": "eq", "value": "/pricing"}],
                    },
                    {"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"},
                ],
            },
            {
                "type": "monetary",
                "event_type": "order_placed",
                "property": "total",
                "metric": "sum",
                "operator": "gt",
                "value": 500,
            },
        ],
    }
    assert body["explanation"] == [
        "all of:",
        '  did page_viewed at least 2 times where path is "/pricing"',
        '  and user property plan is "pro"',
        "or sum of order_placed.total is greater than 500",
    ]
    assert body["warnings"] == []
    # AND the drafted definition previews to the users it describes
    preview = api.post(
        "/api/segments/preview/", {"definition": body["definition"], "limit": 10}, headers=account.bearer
    )
    assert preview.get_json()["sample_user_ids"] == ["ann", "cid"]


def test_draft_warns_about_every_phrase_it_did_not_use(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    body = api.post(DRAFT, {"prompt": "viewed pricing recently and loves cats"}, headers=account.bearer).get_json()
    assert body["definition"]["conditions"][0]["window_days"] == 30
    assert any("recently" in w for w in body["warnings"])
    assert any("loves cats" in w for w in body["warnings"])


def test_a_prompt_with_no_condition_is_400_and_vocabulary_is_per_tenant(stack: LocalStack) -> None:
    api = Api(stack)
    account, other = api.signup(), api.signup()
    shop(stack, account)
    error = assert_error(api.post(DRAFT, {"prompt": "the quick brown fox"}, headers=account.bearer), 400)
    assert error["details"]["errors"][0]["pointer"] == "/prompt"
    assert any("quick brown fox" in w for w in error["details"]["warnings"])
    # a tenant without events has no vocabulary: another tenant's event types never leak into its drafts
    assert_error(api.post(DRAFT, {"prompt": "viewed pricing"}, headers=other.bearer), 400, "validation_failed")
    assert_error(api.post(DRAFT, {"prompt": ""}, headers=account.bearer), 400, "validation_failed")


def test_refining_ands_the_new_conditions_with_the_current_definition(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    current = {
        "logic": "AND",
        "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}],
    }
    body = api.post(DRAFT, {"prompt": "on the pro plan", "definition": current}, headers=account.bearer).get_json()
    assert body["definition"] == {
        "logic": "AND",
        "conditions": [
            *current["conditions"],
            {"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"},
        ],
    }
    bad = {"logic": "AND", "conditions": [{"type": "telepathy"}]}
    error = assert_error(api.post(DRAFT, {"prompt": "on the pro plan", "definition": bad}, headers=account.bearer), 400)
    assert error["details"]["errors"][0]["pointer"] == "/definition/conditions/0/type"


def test_an_ai_segment_stores_its_prompt_with_the_drafted_version_and_computes_like_any_other(
    stack: LocalStack,
) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    # WHEN an ai segment is created from a prompt alone
    created = api.post(
        "/api/segments/",
        {"name": "Pro pricing", "segment_type": "ai", "prompt": "on the pro plan and viewed pricing"},
        headers=account.bearer,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    segment = created.get_json()
    # THEN version 1 holds the drafted definition and the prompt, and it computes to its members
    versions = api.get(f"/api/segments/{segment['id']}/versions/", headers=account.bearer).get_json()["results"]
    assert versions[0]["prompt"] == "on the pro plan and viewed pricing"
    assert versions[0]["definition"] == segment["definition"]
    compute(api, account, segment["id"])
    assert [m["user_id"] for m in members(api, account, segment["id"])] == ["ann"]
    # AND a new prompt is a new version with its own prompt
    patched = api.patch(f"/api/segments/{segment['id']}/", {"prompt": "spent over 500"}, headers=account.bearer)
    assert patched.get_json()["version"] == 2
    versions = api.get(f"/api/segments/{segment['id']}/versions/", headers=account.bearer).get_json()["results"]
    assert [v["prompt"] for v in versions] == ["spent over 500", "on the pro plan and viewed pricing"]


def test_creating_or_patching_from_a_prompt_answers_what_the_drafter_said(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    # WHEN an ai segment is created from a prompt part of which the drafter cannot use
    prompt = "viewed pricing recently and loves cats"
    created = api.post(
        "/api/segments/", {"name": "Cats", "segment_type": "ai", "prompt": prompt}, headers=account.bearer
    ).get_json()
    # THEN the answer says so, as the draft endpoint does for the same prompt
    drafted = api.post(DRAFT, {"prompt": prompt}, headers=account.bearer).get_json()
    assert created["draft"] == {k: drafted[k] for k in ("explanation", "warnings", "provider")}
    assert any("loves cats" in w for w in created["draft"]["warnings"]) and created["draft"]["explanation"]
    # AND a PATCH drafting from a new prompt answers its own notes; one without a prompt, and a read, none
    path = f"/api/segments/{created['id']}/"
    patched = api.patch(path, {"prompt": "on the pro plan"}, headers=account.bearer).get_json()
    assert patched["draft"]["warnings"] == [] and patched["draft"]["explanation"]
    renamed = api.patch(path, {"name": "Pro"}, headers=account.bearer).get_json()
    assert renamed["draft"] is None
    assert api.get(path, headers=account.bearer).get_json()["draft"] is None


def test_only_ai_segments_take_a_prompt(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    response = api.post("/api/segments/", {"name": "R", "prompt": "on the pro plan"}, headers=account.bearer)
    assert assert_error(response, 400, "validation_failed")["details"]["errors"][0]["pointer"] == "/prompt"


def test_a_prompt_that_drafts_an_invalid_segment_is_refused_at_the_prompt_and_not_metered(stack: LocalStack) -> None:
    api = Api(stack)
    account = api.signup()
    shop(stack, account)
    for prompt in ("placed an order in the last 0 days", "placed at least 99999999999999999999999 orders"):
        # WHEN the prompt drafts a definition the DSL refuses THEN the 400 points at what was sent
        error = assert_error(api.post(DRAFT, {"prompt": prompt}, headers=account.bearer), 400, "validation_failed")
        assert [e["pointer"] for e in error["details"]["errors"]] == ["/prompt"], error
        assert "not valid" in error["message"] and "warnings" in error["details"]
    # AND it is not a draft on the bill
    report = api.get("/api/usage/", headers=account.bearer).get_json()
    assert not [row for row in report["breakdown"] if row["metric"] == "ai_drafts"]
