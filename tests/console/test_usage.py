"""Settings → Usage: an owner sees the tenant's billable units counted once, a chart per hour or day,
and downloads the same period as CSV; the page passes axe at both widths."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow


def test_owner_reads_usage_and_downloads_it_as_csv(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    # GIVEN a tenant that sent 3 events, one of them twice (a client retry with the same message_id)
    owner = new_account(console_stack, "usage-shop")
    _, key = console_stack.api(owner.access, "POST", "/api/keys/", {"name": "ingest", "role": "member"})
    events = [{"user_id": f"u-{i}", "event_type": "page_viewed", "message_id": f"m-{i}"} for i in range(3)]
    console_stack.track(key["key"], events)
    console_stack.track(key["key"], events[:1])
    console_stack.wait_for_events(key["key"], 3)
    page = browser_page.page
    log_in(page, console_stack, owner)
    # WHEN the owner opens Settings → Usage
    nav(page, "Usage")
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    # THEN the totals count 3 accepted events (the retry is the same event) and 3 stored, and the chart is drawn
    expect(page.get_by_test_id("usage-events_accepted")).to_have_text("3")
    expect(page.get_by_test_id("usage-events_stored")).to_have_text("3")
    expect(page.get_by_role("img", name="API calls and events per hour")).to_be_visible()
    expect(page.get_by_role("cell", name="track_batch:2xx", exact=True)).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert_accessible(page, "usage")
    browser_page.screenshot("usage")
    # AND per day over 30 days, the same totals
    page.get_by_text("Last 30 days").click()
    expect(page.get_by_role("img", name="API calls and events per day")).to_be_visible()
    expect(page.get_by_test_id("usage-events_stored")).to_have_text("3")
    # AND the CSV of that period holds the same units
    with page.expect_download() as started:
        page.get_by_role("button", name="Download CSV").click()
    download = started.value
    assert download.suggested_filename == "usage-day.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text())))
    stored = sum(int(r["value"]) for r in rows if r["metric"] == "events_stored")
    accepted = sum(int(r["value"]) for r in rows if r["metric"] == "events_accepted")
    assert (stored, accepted) == (3, 3)
    assert browser_page.errors == []
