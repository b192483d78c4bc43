"""New Segment → type lookalike: the seed/size form replaces the rule builder, Preview shows the estimated
size and score histogram, and saving stores a `lookalike` segment with that definition."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow

SEED_USERS = [f"s-{i}" for i in range(4)]
OTHER_USERS = [f"o-{i}" for i in range(12)]


def test_a_lookalike_is_previewed_and_saved_from_its_seed(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    # GIVEN a tenant whose 4 partner-invited users attend webinars, like 6 of the 12 others do,
    # and a computed seed segment of the invited users
    owner = new_account(console_stack, "lookalike-shop")
    _, key = console_stack.api(owner.access, "POST", "/api/keys/", {"name": "ingest", "role": "member"})
    events = [{"user_id": u, "event_type": "partner_invited"} for u in SEED_USERS]
    events += [{"user_id": u, "event_type": "webinar_attended"} for u in SEED_USERS + OTHER_USERS[:6] for _ in range(3)]
    events += [{"user_id": u, "event_type": "page_viewed", "payload": {"path": "/blog"}} for u in OTHER_USERS]
    console_stack.track(key["key"], events)
    console_stack.wait_for_events(key["key"], len(events))
    invited = {
        "logic": "AND",
        "conditions": [{"type": "event_count", "event_type": "partner_invited", "operator": "gte", "value": 1}],
    }
    _, seed = console_stack.api(
        owner.access, "POST", "/api/segments/", {"name": "Partner invitees", "active": True, "definition": invited}
    )
    console_stack.api(owner.access, "POST", f"/api/segments/{seed['id']}/compute/")
    deadline = time.monotonic() + 30
    while (status := console_stack.api(owner.access, "GET", f"/api/segments/{seed['id']}/compute/")[1])[
        "status"
    ] != "succeeded":
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status["member_count"] == len(SEED_USERS)
    # and a seed that was never computed: inactive, so the delta compute of the events above, which may
    # still be on its way, does not compute it before the preview
    console_stack.api(
        owner.access, "POST", "/api/segments/", {"name": "Never computed", "active": False, "definition": invited}
    )
    page = browser_page.page
    log_in(page, console_stack, owner)
    nav(page, "Segments")
    page.get_by_role("link", name="New Segment").click()
    page.get_by_label("Name").fill("Like invitees")

    # WHEN the type is lookalike
    page.get_by_role("textbox", name="Type", exact=True).click()
    page.get_by_role("option", name="lookalike").click()
    # THEN the lookalike form replaces the rule builder and the AI box
    form = page.get_by_role("region", name="Lookalike definition")
    expect(form).to_be_visible()
    expect(page.get_by_role("region", name="Describe your audience")).to_have_count(0)
    expect(page.locator('[data-node="condition"]')).to_have_count(0)
    expect(form.get_by_label("Lookback days")).to_have_value("90")
    expect(form.get_by_label("Exclude seed users")).to_be_checked()

    # WHEN it is previewed without a seed THEN the API's message is at the seed field
    form.get_by_role("button", name="Preview").click()
    expect(form.get_by_role("textbox", name="Seed segment")).to_have_attribute("aria-invalid", "true")

    # WHEN the uncomputed seed is previewed THEN the API's 409 says to compute it first
    form.get_by_role("textbox", name="Seed segment").click()
    page.get_by_role("option", name="Never computed").click()
    form.get_by_role("button", name="Preview").click()
    expect(form.get_by_role("alert")).to_contain_text("compute it first")

    # WHEN a minimum score is chosen instead of a size THEN its box replaces the size box
    form.get_by_text("Minimum score", exact=True).click()
    expect(form.get_by_role("radio", name="Minimum score")).to_be_checked()
    expect(form.get_by_role("textbox", name="Minimum score")).to_have_value("0.5")
    expect(form.get_by_role("textbox", name="Size", exact=True)).to_have_count(0)
    form.get_by_text("Size", exact=True).click()

    # WHEN the seed and a size of 5 are chosen and previewed
    form.get_by_role("textbox", name="Seed segment").click()
    page.get_by_role("option", name="Partner invitees").click()
    form.get_by_role("textbox", name="Size", exact=True).fill("5")
    form.get_by_role("button", name="Preview").click()
    # THEN the estimate is 5 users, and the histogram counts the 12 non-seed users
    result = form.get_by_role("region", name="Lookalike preview")
    expect(result.get_by_test_id("lookalike-size")).to_have_text("5")
    expect(result).to_contain_text("trained on 4 seed users, 12 users scored")
    expect(result.get_by_role("row")).to_have_count(11)
    assert_accessible(page, "lookalike-new")
    browser_page.screenshot("lookalike-new")

    # WHEN it is saved THEN the API holds a lookalike segment with exactly that definition
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Like invitees")).to_be_visible()
    _, listed = console_stack.api(owner.access, "GET", "/api/segments/?segment_type=lookalike")
    (segment,) = listed["results"]
    assert segment["segment_type"] == "lookalike"
    # (exactly as the form sent it: no min_score key beside the size)
    assert segment["definition"] == {
        "seed_segment_id": seed["id"],
        "size": 5,
        "lookback_days": 90,
        "exclude_seed": True,
    }
    # AND its page shows the same form, filled in
    detail = page.get_by_role("region", name="Lookalike definition")
    expect(detail.get_by_role("textbox", name="Seed segment")).to_have_value("Partner invitees")
    expect(detail.get_by_role("textbox", name="Size", exact=True)).to_have_value("5")
    assert_accessible(page, "lookalike-detail")
    # the refused previews' 400 and 409 are the only errors the browser logged
    assert [e for e in browser_page.errors if "status of 400" not in e and "status of 409" not in e] == []
