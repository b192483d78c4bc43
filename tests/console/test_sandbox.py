"""reference/event-sandbox.txt in the browser: a simulated order of 520 makes a user enter
"High-Value Customers"; the other active segments are counted as unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow

HIGH_VALUE = {
    "logic": "AND",
    "conditions": [
        {
            "type": "monetary",
            "event_type": "order_placed",
            "property": "total",
            "metric": "sum",
            "operator": "gte",
            "value": 500,
        }
    ],
}
UNAFFECTED = [
    {
        "logic": "AND",
        "conditions": [{"type": "recency", "event_type": "page_viewed", "operator": "lt", "window_days": 7}],
    },
    {"logic": "AND", "conditions": [{"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"}]},
]


def test_sandbox_walkthrough(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    # GIVEN a tenant with "High-Value Customers" and two segments an order cannot affect, all active
    account = new_account(console_stack, "sandbox-shop")
    for name, definition in [
        ("High-Value Customers", HIGH_VALUE),
        ("Recent Visitors", UNAFFECTED[0]),
        ("Pro Plan", UNAFFECTED[1]),
    ]:
        status, body = console_stack.api(
            account.access, "POST", "/api/segments/", {"name": name, "active": True, "definition": definition}
        )
        assert status == 201, body
    page = browser_page.page
    log_in(page, console_stack, account)
    # WHEN the sandbox form is filled as the reference page shows and published
    nav(page, "Sandbox")
    expect(page.get_by_label("Occurred At")).not_to_have_value("")  # defaults to now
    page.get_by_label("User ID").fill("user-test-123")
    page.get_by_role("textbox", name="Event Type").fill("order_placed")
    payload = page.get_by_role("textbox", name="Payload")
    payload.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text('{"total": 520, "currency": "USD"')
    expect(page.get_by_role("alert")).to_contain_text("Invalid JSON")  # validated as typed
    expect(page.get_by_role("button", name="Publish")).to_be_disabled()
    page.keyboard.insert_text("}")
    page.get_by_role("button", name="Publish").click()
    # THEN Entered lists the segment (linked), Exited none, Unchanged counts the other two
    entered = page.get_by_test_id("entered")
    expect(entered.get_by_role("link", name="High-Value Customers")).to_be_visible()
    expect(page.get_by_test_id("exited")).to_contain_text("none")
    expect(page.get_by_test_id("unchanged-count")).to_have_text("2")
    assert_accessible(page, "sandbox")
    browser_page.screenshot("sandbox")
    # AND nothing was stored: the stats of the tenant show no event
    _, stats = console_stack.api(account.access, "GET", "/api/ingestion/stats/?window=24h")
    assert stats["total_events"] == 0
    # AND the segment link leads to the segment
    entered.get_by_role("link", name="High-Value Customers").click()
    expect(page.get_by_role("heading", name="High-Value Customers")).to_be_visible()
    assert browser_page.errors == []


def test_an_emptied_occurred_at_means_now(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    page = browser_page.page
    log_in(page, console_stack)
    nav(page, "Sandbox")
    page.get_by_label("User ID").fill("u0")
    page.get_by_role("textbox", name="Event Type").fill("order_placed")
    # WHEN Occurred At is cleared and the event published
    page.get_by_label("Occurred At").fill("")
    with page.expect_request(lambda r: r.url.endswith("/api/explorer/sandbox/publish/")) as sent:
        page.get_by_role("button", name="Publish").click()
    # THEN it is sent as happening now, and its result shown
    occurred = datetime.fromisoformat(json.loads(sent.value.post_data or "{}")["occurred_at"])
    assert abs(datetime.now(UTC) - occurred) < timedelta(minutes=2)
    expect(page.get_by_test_id("unchanged-count")).to_be_visible()
    assert browser_page.errors == []
