"""Settings → Plan: an admin sees the tenant's limits and how much of the month's events quota is used."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow


def test_the_plan_page_shows_the_limits_and_this_months_events(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    # GIVEN a tenant on the default plan that sent 3 events this month
    account = new_account(console_stack, "plan-shop")
    _, key = console_stack.api(account.access, "POST", "/api/keys/", {"name": "ingest", "role": "member"})
    console_stack.track(key["key"], [{"user_id": f"user-{i}", "event_type": "page_viewed"} for i in range(3)])
    page = browser_page.page
    log_in(page, console_stack, account)
    # WHEN its owner opens Settings → Plan
    nav(page, "Plan")
    # THEN the plan's name, its limits and the quota used are shown
    expect(page.get_by_role("heading", name="Plan", exact=True)).to_be_visible()
    expect(page.get_by_text("default", exact=True)).to_be_visible()
    expect(page.get_by_text("3 of 50,000,000")).to_be_visible()
    expect(page.get_by_role("row", name="API calls per minute, each API key 30,000")).to_be_visible()
    expect(page.get_by_role("row", name="Connectors 100")).to_be_visible()
    assert_accessible(page, "plan")
    browser_page.screenshot("plan")
