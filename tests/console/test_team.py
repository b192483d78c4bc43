"""Settings → Team: an owner invites a teammate as viewer; the invitee (no account yet) accepts from the
mailed link without creating a tenant; their console is read-only and the API refuses their writes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import BrowserPage, open_page
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow

DEFINITION = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}],
}


def test_invited_viewer_gets_a_read_only_console(
    console_stack: ConsoleStack, browser_page: BrowserPage, browser: Browser
) -> None:
    owner = new_account(console_stack, "team-shop")
    status, segment = console_stack.api(
        owner.access, "POST", "/api/segments/", {"name": "Visitors", "definition": DEFINITION}
    )
    assert status == 201
    page = browser_page.page
    log_in(page, console_stack, owner)
    # GIVEN the owner invites a teammate as viewer from Settings → Team
    nav(page, "Team")
    page.get_by_label("Invite by email").fill("vera@team-shop.example")
    page.get_by_role("textbox", name="Role", exact=True).click()
    page.get_by_role("option", name="viewer", exact=True).click()
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status")).to_have_text("Invitation sent.")
    expect(page.get_by_role("region", name="Pending invitations").get_by_text("vera@team-shop.example")).to_be_visible()
    assert_accessible(page, "team-invited")
    browser_page.screenshot("team-invited")
    # AND at 390 px the page does not scroll sideways (the invitations table scrolls in its own box)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    pending = page.get_by_role("region", name="Pending invitations")
    expect(pending).to_be_visible()
    assert pending.evaluate("e => e.scrollWidth <= e.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    browser_page.screenshot("team-invited-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    link = console_stack.link_sent_to("vera@team-shop.example", "/invitations/accept")

    # WHEN the invitee (another browser, no account) opens the link and chooses a password
    context = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        invitee = open_page(context)
        invitee.page.goto(link)
        expect(invitee.page.get_by_role("heading", name="Join team-shop")).to_be_visible()
        expect(invitee.page.get_by_text("as viewer")).to_be_visible()
        assert_accessible(invitee.page, "invitation")
        invitee.screenshot("invitation-accept-390")
        # (a password the API refuses: its message shows once, under the field)
        invitee.page.get_by_label("Choose a password").fill("short")
        invitee.page.get_by_role("button", name="Accept and join").click()
        expect(invitee.page.get_by_label("Choose a password")).to_have_accessible_description(re.compile("at least"))
        expect(invitee.page.get_by_role("alert")).to_have_count(0)
        invitee.page.get_by_label("Choose a password").fill("vera's long password")
        invitee.page.get_by_role("button", name="Accept and join").click()
        # THEN they are in the inviting tenant as viewer, and have no tenant of their own
        expect(invitee.page.get_by_role("heading", name="Segments")).to_be_visible()
        expect(invitee.page.get_by_test_id("role")).to_have_text("viewer")
        expect(invitee.page.get_by_role("link", name="New Segment")).to_have_count(0)
        vera = console_stack.token("vera@team-shop.example", "vera's long password")
        _, tenants = console_stack.api(vera, "GET", "/api/tenants/")
        assert [(t["slug"], t["role"]) for t in tenants["results"]] == [("team-shop", "viewer")]
        # AND the segment page has no edit controls
        invitee.page.get_by_role("link", name="Visitors").click()
        expect(invitee.page.get_by_role("heading", name="Visitors")).to_be_visible()
        expect(invitee.page.get_by_role("button", name="Recompute")).to_have_count(0)
        expect(invitee.page.get_by_role("button", name="Save")).to_have_count(0)
        expect(invitee.page.get_by_role("button", name="+ Condition")).to_have_count(0)
        expect(invitee.page.get_by_role("button", name="Draft")).to_have_count(0)
        expect(invitee.page.get_by_role("switch", name="Active")).to_be_disabled()
        expect(invitee.page.get_by_role("tab", name="Export")).to_have_count(0)
        assert_accessible(invitee.page, "viewer-segment")
        invitee.screenshot("viewer-segment-390")
        assert [e for e in invitee.errors if "status of 400" not in e] == []
    finally:
        context.close()
    # AND what the UI hides, the API refuses
    assert console_stack.api(vera, "POST", "/api/segments/", {"name": "Nope"})[0] == 403
    assert console_stack.api(vera, "PATCH", f"/api/segments/{segment['id']}/", {"definition": DEFINITION})[0] == 403
    assert console_stack.api(vera, "POST", "/api/segments/ai/draft/", {"prompt": "viewed pricing"})[0] == 403
    assert console_stack.api(vera, "POST", f"/api/segments/{segment['id']}/compute/")[0] == 403
    assert console_stack.api(vera, "POST", "/api/keys/", {"name": "x", "role": "viewer"})[0] == 403
    # WHEN the owner promotes her to member THEN the API lets her write
    page.reload()
    page.get_by_role("textbox", name="Role of vera@team-shop.example").click()
    page.get_by_role("option", name="member", exact=True).click()
    expect(page.get_by_role("textbox", name="Role of vera@team-shop.example")).to_have_value("member")
    assert console_stack.api(vera, "POST", "/api/segments/", {"name": "Now allowed"})[0] == 201
    # AND when the owner removes her (after confirming) she loses access
    page.get_by_role("button", name="Remove vera@team-shop.example").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("cell", name="vera@team-shop.example", exact=True)).to_have_count(0)
    assert console_stack.api(vera, "GET", "/api/segments/")[0] == 404
    assert browser_page.errors == []
