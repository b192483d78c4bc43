"""The console's session: the access JWT is refreshed silently before it expires (refresh tokens
rotate), and a session the API refuses sends the person to log in and back to where they were."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Request, expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, log_in, nav, new_account

pytestmark = pytest.mark.slow


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "")


def test_access_token_is_refreshed_before_it_expires(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    page = browser_page.page
    # GIVEN a signed-in console whose timers the test controls
    page.clock.install()
    log_in(page, console_stack)
    with page.expect_request(lambda r: r.url.endswith("/api/ingestion/stats/?window=24h")) as first:
        nav(page, "Events")
    # WHEN 59 minutes pass (access tokens live 60)
    with page.expect_response(lambda r: r.url.endswith("/api/auth/token/refresh/")) as refreshed:
        page.clock.fast_forward("59:00")
    # THEN the refresh happened silently and later requests carry the new token
    assert refreshed.value.status == 200
    nav(page, "Segments")
    with page.expect_request(lambda r: r.url.endswith("/api/ingestion/stats/?window=24h")) as later:
        nav(page, "Events")
    assert _bearer(later.value).startswith("Bearer ") and _bearer(later.value) != _bearer(first.value)
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    assert browser_page.errors == []


def test_a_refused_session_returns_to_the_page_after_login(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    log_in(page, console_stack)
    nav(page, "Events")
    expect(page.get_by_test_id("total-events")).to_be_visible()
    # GIVEN the session is revoked behind the console's back (logout of its refresh token family)
    refresh = page.evaluate("sessionStorage.getItem('segops.refresh')")
    status = page.request.post(f"{console_stack.base}/api/auth/logout/", data={"refresh": refresh}).status
    assert status == 204
    # WHEN the page next calls the API (its access token belongs to the revoked family)
    page.get_by_text("7d", exact=True).click()
    # THEN login is asked for, and afterwards the person is back on the same page
    expect(page.get_by_role("heading", name="Log in to SegOps")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fevents$"))
    expect(page.get_by_text("Your session ended. Log in to continue.")).to_be_visible()
    page.get_by_label("Email").fill(console_stack.owner_email)
    page.get_by_label("Password").fill(console_stack.owner_password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    assert [e for e in browser_page.errors if "401" not in e] == []


def test_the_next_person_after_a_refused_session_sees_only_their_own_tenant(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    other = new_account(console_stack, "next-in-tab")
    page = browser_page.page
    header = page.get_by_role("banner")
    # GIVEN the demo owner signed in, the session then revoked behind the console's back
    log_in(page, console_stack)
    expect(header).to_contain_text("demo")
    refresh = page.evaluate("sessionStorage.getItem('segops.refresh')")
    assert page.request.post(f"{console_stack.base}/api/auth/logout/", data={"refresh": refresh}).status == 204
    nav(page, "Events")
    expect(page.get_by_role("heading", name="Log in to SegOps")).to_be_visible()
    # WHEN the owner of another tenant logs in in the same tab
    page.get_by_label("Email").fill(other.email)
    page.get_by_label("Password").fill(other.password)
    page.get_by_role("button", name="Log in").click()
    # THEN the header names their tenant (nothing cached for the previous session is left), and Team is theirs
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    expect(header).to_contain_text("next-in-tab")
    expect(header).not_to_contain_text("demo")
    nav(page, "Team")
    expect(page.get_by_role("cell", name=other.email, exact=True)).to_be_visible()
    expect(page.get_by_text(console_stack.owner_email)).to_have_count(0)
    assert [e for e in browser_page.errors if "401" not in e] == []
