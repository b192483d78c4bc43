"""Every page of the console at 1280 px and 390 px: it renders its content, axe-core finds no serious
or critical violation, the browser logs no error; a screenshot of each goes to build/artifacts/browser/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.support.browser import BrowserPage, open_page
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow

# path → a heading the page shows once its data is loaded
PAGES = {
    "segments": ("/segments", "Segments"),
    "segment-new": ("/segments/new", "New Segment"),
    "segment-detail": ("/segments/{segment}", "Checkout Visitors"),
    "sandbox": ("/sandbox", "Sandbox"),
    "events": ("/events", "Events"),
    "connectors": ("/connectors", "Connectors"),
    "api-keys": ("/settings/api-keys", "API Keys"),
    "team": ("/settings/team", "Team"),
    "integrations": ("/settings/integrations", "Integrations"),
    "usage": ("/settings/usage", "Usage"),
    "plan": ("/settings/plan", "Plan"),
    "not-found": ("/no/such/page", "Page not found"),
    "segment-not-a-number": ("/segments/abc", "Page not found"),
}


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_is_accessible_and_error_free(console_stack: ConsoleStack, browser: Browser, width: int) -> None:
    # GIVEN a tenant with events, a computed segment and a connector
    account = new_account(console_stack, f"pages-{width}")
    _, key = console_stack.api(account.access, "POST", "/api/keys/", {"name": "ingest", "role": "member"})
    console_stack.track(
        key["key"],
        [
            {"user_id": f"user-{i}", "event_type": kind, "payload": {"path": "/checkout", "total": 10 * i}}
            for i in range(5)
            for kind in ("page_viewed", "order_placed")
        ],
    )
    console_stack.wait_for_events(key["key"], 10)
    definition = {
        "logic": "AND",
        "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}],
    }
    _, segment = console_stack.api(
        account.access,
        "POST",
        "/api/segments/",
        {"name": "Checkout Visitors", "active": True, "definition": definition},
    )
    console_stack.api(account.access, "POST", f"/api/segments/{segment['id']}/compute/")
    status, _ = console_stack.api(
        account.access,
        "POST",
        "/api/connectors/",
        {"name": "Files", "type": "file", "segment_id": segment["id"], "config": {"format": "csv"}},
    )
    assert status == 201
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = open_page(context)
        log_in(page.page, console_stack, account)
        for name, (path, heading) in PAGES.items():
            # WHEN each page is opened
            page.page.goto(console_stack.base + path.format(segment=segment["id"]))
            # THEN it shows its heading, passes axe and logs nothing
            expect(page.page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            page.page.wait_for_load_state("networkidle")
            assert_accessible(page.page, f"{name}@{width}")
            page.screenshot(f"{name}-{width}")
        assert page.errors == []
    finally:
        context.close()


def test_login_page_and_return_after_401(console_stack: ConsoleStack, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        page = open_page(context)
        # GIVEN no session WHEN a deep link is opened THEN login is shown, and afterwards the deep link
        page.page.goto(console_stack.base + "/events")
        expect(page.page.get_by_role("heading", name="Log in to SegOps")).to_be_visible()
        expect(page.page).to_have_url(re.compile(r"/login\?next=%2Fevents$"))
        expect(page.page.get_by_text("Your session ended")).to_have_count(0)  # there was none
        assert_accessible(page.page, "login")
        page.screenshot("login-390")
        page.page.get_by_label("Email").fill(console_stack.owner_email)
        page.page.get_by_label("Password").fill("wrong password")
        page.page.get_by_role("button", name="Log in").click()
        expect(page.page.get_by_role("alert")).to_be_visible()
        # (from the keyboard: Enter in the password field submits)
        page.page.get_by_label("Password").fill(console_stack.owner_password)
        page.page.get_by_label("Password").press("Enter")
        expect(page.page.get_by_role("heading", name="Events")).to_be_visible()
        # AND at 390 px the closed sidebar is out of the Tab order; the burger opens it from the keyboard
        in_nav = "document.activeElement?.closest('nav') !== null"
        for _ in range(4):
            page.page.keyboard.press("Tab")
            assert not page.page.evaluate(in_nav)
        page.page.get_by_role("button", name="Toggle navigation").focus()
        page.page.keyboard.press("Enter")
        for _ in range(6):
            page.page.keyboard.press("Tab")
            if page.page.evaluate(in_nav):
                break
        assert page.page.evaluate(in_nav)
        page.page.keyboard.press("Enter")  # follows the focused sidebar link
        # AND logging out ends the session: a reload lands on login again
        page.page.get_by_role("button", name="Log out").click()
        expect(page.page.get_by_role("heading", name="Log in to SegOps")).to_be_visible()
        page.page.goto(console_stack.base + "/segments")
        expect(page.page.get_by_role("heading", name="Log in to SegOps")).to_be_visible()
        # the wrong password's 401 is the only error the browser logged
        assert [e for e in page.errors if "401" not in e] == []
    finally:
        context.close()


def test_tenant_switcher_for_a_person_in_two_tenants(console_stack: ConsoleStack, browser: Browser) -> None:
    # GIVEN an owner with an API key, who created a second tenant with a segment of its own
    account = new_account(console_stack, "switch-one")
    assert console_stack.api(account.access, "POST", "/api/keys/", {"name": "Only In One"})[0] == 201
    status, second = console_stack.api(account.access, "POST", "/api/tenants/", {"slug": "switch-two"})
    assert status == 201, second
    status, _ = console_stack.api(
        account.access, "POST", "/api/segments/", {"name": "Only In Two", "tenant": second["id"]}
    )
    assert status == 201
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = open_page(context)
        log_in(page.page, console_stack, account)
        expect(page.page.get_by_text("No segments yet.")).to_be_visible()
        # WHEN the other tenant is chosen in the header
        page.page.get_by_role("textbox", name="Tenant").click()
        page.page.get_by_role("option", name="switch-two").click()
        # THEN its segments are listed, and the choice survives a reload
        expect(page.page.get_by_role("link", name="Only In Two")).to_be_visible()
        page.page.reload()
        expect(page.page.get_by_role("link", name="Only In Two")).to_be_visible()
        # AND nothing cached for the first tenant is shown in the second: while the second tenant's
        # keys are on their way, API Keys shows it is loading, not the first tenant's keys
        page.page.get_by_role("textbox", name="Tenant").click()
        page.page.get_by_role("option", name="switch-one").click()
        nav(page.page, "API Keys")
        expect(page.page.get_by_role("cell", name="Only In One", exact=True)).to_be_visible()
        nav(page.page, "Segments")
        page.page.get_by_role("textbox", name="Tenant").click()
        page.page.get_by_role("option", name="switch-two").click()
        expect(page.page.get_by_role("link", name="Only In Two")).to_be_visible()
        held: list[Route] = []
        page.page.route("**/api/keys/", lambda route: held.append(route))
        with page.page.expect_request("**/api/keys/"):
            nav(page.page, "API Keys")
        expect(page.page.get_by_label("Loading", exact=True)).to_be_visible()
        expect(page.page.get_by_text("Only In One")).to_have_count(0)
        for route in held:
            route.continue_()
        expect(page.page.get_by_text("No API keys yet.")).to_be_visible()
        assert page.errors == []
    finally:
        context.close()


def test_a_page_that_fails_shows_the_console_error_page(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    page = browser_page.page
    log_in(page, console_stack)
    # GIVEN the Sandbox page's code cannot be downloaded (as when a deploy replaced it meanwhile)
    chunk = re.compile(r"/assets/Sandbox-[^/]+\.js$")
    page.route(chunk, lambda route: route.abort())
    # WHEN it is opened
    nav(page, "Sandbox")
    # THEN the console's own error page shows inside the frame, not React Router's developer page
    expect(page.get_by_role("alert")).to_contain_text("Something went wrong")
    expect(page.get_by_text("Unexpected Application Error")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    browser_page.screenshot("route-error")
    # AND its link reloads the page, which then works
    page.unroute(chunk)
    page.get_by_role("link", name="Reload it").click()
    expect(page.get_by_role("heading", name="Sandbox")).to_be_visible()
    assert browser_page.errors == ["Failed to load resource: net::ERR_FAILED"]
