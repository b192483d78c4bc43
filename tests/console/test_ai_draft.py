"""New Segment → "Describe your audience": a prompt drafted by the API (offline provider) fills the rule
builder with the explanation and warnings shown; saving stores an `ai` segment with its prompt."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow

PROMPT = "viewed pricing at least 3 times in the last 7 days"
REFINEMENT = "viewed docs 2 times"
REDRAFT = "viewed docs at least 4 times"


def test_a_described_audience_fills_the_builder_and_saves_as_an_ai_segment(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    # GIVEN a tenant whose page views include /pricing: u-1 viewed it 3 times (and /docs twice), u-2 once,
    # u-3 only /docs
    owner = new_account(console_stack, "ai-shop")
    _, key = console_stack.api(owner.access, "POST", "/api/keys/", {"name": "ingest", "role": "member"})
    views = [("u-1", "/pricing")] * 3 + [("u-1", "/docs")] * 2
    views += [("u-2", "/pricing"), ("u-2", "/docs")] + [("u-3", "/docs")] * 4
    console_stack.track(
        key["key"], [{"user_id": u, "event_type": "page_viewed", "payload": {"path": p}} for u, p in views]
    )
    console_stack.wait_for_events(key["key"], len(views))
    page = browser_page.page
    log_in(page, console_stack, owner)
    nav(page, "Segments")
    page.get_by_role("link", name="New Segment").click()
    page.get_by_label("Name").fill("Pricing Fans")
    box = page.get_by_role("region", name="Describe your audience")
    expect(box.get_by_role("button", name="Refine")).to_be_disabled()

    # WHEN a description with nothing the tenant's data can answer is drafted
    box.get_by_label("Audience description").fill("loves cats")
    box.get_by_role("button", name="Draft").click()
    # THEN the API's message is at the box, what was not understood is a warning, and the rules stay empty
    expect(box.get_by_label("Audience description")).to_have_attribute("aria-invalid", "true")
    expect(box.get_by_text("nothing in the prompt could be turned into a condition")).to_be_visible()
    expect(box.get_by_test_id("draft-warnings")).to_contain_text("cats")
    expect(page.locator('[data-node="condition"]')).to_have_count(0)

    # WHEN the audience is described and drafted
    box.get_by_label("Audience description").fill(PROMPT)
    box.get_by_role("button", name="Draft").click()
    # THEN the builder holds the condition: page_viewed at least 3 times in 7 days where path is /pricing
    condition = page.get_by_role("group", name="Condition 1")
    expect(condition.get_by_role("textbox", name="Event type")).to_have_value("page_viewed")
    expect(condition.get_by_label("Operator").first).to_have_value("≥ at least")
    expect(condition.get_by_label("Count")).to_have_value("3")
    expect(condition.get_by_label("Within last (days)")).to_have_value("7")
    expect(condition.get_by_label("Payload property")).to_have_value("path")
    expect(condition.get_by_label("Value", exact=True)).to_have_value("/pricing")
    # AND the explanation says so, the type became ai, and the preview matches only u-1
    expect(box.get_by_test_id("draft-explanation")).to_contain_text("page_viewed")
    expect(box.get_by_test_id("draft-warnings")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Type", exact=True)).to_have_value("ai")
    expect(page.get_by_test_id("preview-count")).to_have_text("1")
    assert_accessible(page, "ai-draft")
    browser_page.screenshot("ai-draft")

    # WHEN it is refined THEN the new condition is AND-ed to the drafted one, and the assumption made is a warning
    box.get_by_label("Audience description").fill(REFINEMENT)
    box.get_by_role("button", name="Refine").click()
    expect(page.locator('[data-node="condition"]')).to_have_count(2)
    second = page.get_by_role("group", name="Condition 2")
    expect(second.get_by_label("Count")).to_have_value("2")
    expect(second.get_by_label("Value", exact=True)).to_have_value("/docs")
    expect(page.get_by_role("group", name="Condition 1").get_by_label("Count")).to_have_value("3")
    expect(box.get_by_test_id("draft-explanation").get_by_role("listitem")).to_have_count(2)
    expect(box.get_by_test_id("draft-warnings")).to_contain_text("at least")
    expect(page.get_by_test_id("preview-count")).to_have_text("1")
    assert_accessible(page, "ai-refined")

    # WHEN it is saved THEN the segment is an ai segment whose version keeps the prompts
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Pricing Fans")).to_be_visible()
    _, listed = console_stack.api(owner.access, "GET", "/api/segments/")
    (segment,) = listed["results"]
    assert segment["segment_type"] == "ai"
    assert [c["event_type"] for c in segment["definition"]["conditions"]] == ["page_viewed", "page_viewed"]
    _, versions = console_stack.api(owner.access, "GET", f"/api/segments/{segment['id']}/versions/")
    assert [v["prompt"] for v in versions["results"]] == [f"{PROMPT} and {REFINEMENT}"]

    # WHEN its rules are drafted anew on the segment's page and saved
    box = page.get_by_role("region", name="Describe your audience")
    box.get_by_label("Audience description").fill(REDRAFT)
    box.get_by_role("button", name="Draft").click()
    # THEN the draft replaced the rules, and the new version keeps the new prompt
    expect(page.locator('[data-node="condition"]')).to_have_count(1)
    expect(page.get_by_role("group", name="Condition 1").get_by_label("Count")).to_have_value("4")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved as version 2")).to_be_visible()
    _, versions = console_stack.api(owner.access, "GET", f"/api/segments/{segment['id']}/versions/")
    prompts = {v["version"]: v["prompt"] for v in versions["results"]}
    assert prompts == {1: f"{PROMPT} and {REFINEMENT}", 2: REDRAFT}
    # the refused prompt's 400 is the only error the browser logged
    assert [e for e in browser_page.errors if "status of 400" not in e] == []
