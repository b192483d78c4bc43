"""Connector credentials and the Shopify secret are write-only in the console; an export downloads."""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Route, expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow

SECRET = "pk_live_never_shown_again_7f3a"
DEFINITION = {
    "logic": "AND",
    "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}],
}


def test_connector_credentials_never_reappear(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    owner = new_account(console_stack, "connector-shop")
    status, _ = console_stack.api(owner.access, "POST", "/api/segments/", {"name": "Buyers", "definition": DEFINITION})
    assert status == 201
    page = browser_page.page
    log_in(page, console_stack, owner)
    # GIVEN a Klaviyo connector created in the console with an API key
    nav(page, "Connectors")
    page.get_by_role("button", name="New connector").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Klaviyo buyers")
    dialog.get_by_role("textbox", name="Segment").click()
    dialog.get_by_role("option", name="Buyers").click()
    config = dialog.get_by_role("textbox", name="Configuration (JSON)")
    config.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text('{"list_id": "Xy12Ab", "identifier": "email"}')
    dialog.get_by_label("API key").fill(SECRET)
    assert_accessible(page, "connector-form")
    dialog.get_by_role("button", name="Save").click()
    # THEN the list says a key is set, and the secret is nowhere in the page
    expect(page.get_by_role("cell", name="Klaviyo buyers", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="set", exact=True)).to_be_visible()
    assert SECRET not in page.content()
    # AND editing shows an empty write-only field (keeping the key when left empty)
    page.get_by_role("button", name="Edit Klaviyo buyers").click()
    expect(page.get_by_label("Replace API key")).to_have_value("")
    assert SECRET not in page.content()
    browser_page.screenshot("connector-edit")
    page.get_by_role("dialog").get_by_label("Active (sync after each compute)").check()
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_role("cell", name="active", exact=True)).to_be_visible()
    _, listed = console_stack.api(owner.access, "GET", "/api/connectors/")
    assert listed["results"][0]["credentials_set"] is True and listed["results"][0]["active"] is True
    assert SECRET not in str(listed)
    # AND the sync history opens
    page.get_by_role("button", name="Sync history of Klaviyo buyers").click()
    expect(page.get_by_role("dialog", name="Sync history: Klaviyo buyers")).to_be_visible()
    assert SECRET not in page.content()
    assert browser_page.errors == []


def test_export_downloads_the_members(console_stack: ConsoleStack, browser_page: BrowserPage) -> None:
    # GIVEN a computed segment with three members
    owner = new_account(console_stack, "export-shop")
    _, key = console_stack.api(owner.access, "POST", "/api/keys/", {"name": "ingest", "role": "member"})
    console_stack.track(key["key"], [{"user_id": f"u-{i}", "event_type": "page_viewed"} for i in range(3)])
    console_stack.wait_for_events(key["key"], 3)
    _, segment = console_stack.api(
        owner.access, "POST", "/api/segments/", {"name": "Viewers", "definition": DEFINITION}
    )
    page = browser_page.page
    log_in(page, console_stack, owner)
    page.get_by_role("link", name="Viewers").click()
    page.get_by_role("button", name="Recompute").click()
    expect(page.get_by_test_id("member-count")).to_have_text("3", timeout=30_000)
    # WHEN a CSV export is started from the Export tab
    page.get_by_role("tab", name="Export").click()
    page.get_by_role("button", name="Export", exact=True).click()
    expect(page.get_by_test_id("export-status")).to_have_text("succeeded", timeout=30_000)
    assert_accessible(page, "export")
    browser_page.screenshot("export")
    with page.expect_download() as started:
        page.get_by_role("button", name="Download").click()
    # THEN the downloaded file holds the members
    download = started.value
    assert download.suggested_filename == f"segment-{segment['id']}-members.csv"
    path = download.path()
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert sorted(r[0] for r in rows[1:]) == ["u-0", "u-1", "u-2"]
    assert browser_page.errors == []


def test_shopify_secret_is_write_only_and_the_webhook_url_is_shown(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    owner = new_account(console_stack, "shopify-shop")
    page = browser_page.page
    log_in(page, console_stack, owner)
    # GIVEN Settings → Integrations: the webhook URL to paste into Shopify, no secret yet
    nav(page, "Integrations")
    expect(page.get_by_text(f"{console_stack.base}/api/ingestion/shopify/shopify-shop/")).to_be_visible()
    expect(page.get_by_text("not set")).to_be_visible()
    # WHEN the secret is saved
    page.get_by_label("Shopify app API secret key").fill("shpss_write_only_secret_value")
    page.get_by_role("button", name="Save secret").click()
    # THEN the page says it is set, the field is empty again, and the secret is nowhere
    expect(page.get_by_text(re.compile("^set "))).to_be_visible()
    expect(page.get_by_label("Replace the API secret key")).to_have_value("")
    assert "shpss_write_only_secret_value" not in page.content()
    assert_accessible(page, "integrations-set")
    assert browser_page.errors == []


def _latest_sync(stack: ConsoleStack, token: str, connector_id: int) -> dict[str, Any]:
    _, syncs = stack.api(token, "GET", f"/api/connectors/{connector_id}/syncs/")
    return dict(max(syncs["results"], key=lambda s: s["id"]))


def test_the_connector_list_follows_a_full_sync_to_its_end(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    # GIVEN an active file connector whose first sync (queued by activating it) has finished
    owner = new_account(console_stack, "sync-shop")
    _, segment = console_stack.api(owner.access, "POST", "/api/segments/", {"name": "Buyers", "definition": DEFINITION})
    status, connector = console_stack.api(
        owner.access,
        "POST",
        "/api/connectors/",
        {"name": "kl", "type": "file", "segment_id": segment["id"], "config": {"format": "csv"}},
    )
    assert status == 201
    path = f"/api/connectors/{connector['id']}/"
    assert console_stack.api(owner.access, "PATCH", path, {"active": True})[0] == 200
    deadline = time.monotonic() + 30
    while _latest_sync(console_stack, owner.access, connector["id"])["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    page = browser_page.page
    log_in(page, console_stack, owner)
    nav(page, "Connectors")
    last_sync = page.get_by_role("row").filter(has_text="kl").get_by_role("cell", name=re.compile(" · "))
    expect(last_sync).to_contain_text("succeeded")

    # WHEN a full sync is requested, and the list reloaded after it still finds it queued (on this
    # stack a sync may finish before that reload; a real one takes longer)
    def still_queued(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["results"][0]["last_sync"]["status"] = "queued"
        route.fulfill(response=response, json=body)

    page.route("**/api/connectors/", still_queued, times=1)
    page.get_by_role("button", name="Full sync kl").click()
    # THEN the console says so, and the list follows that sync until it has finished
    expect(page.get_by_role("alert").filter(has_text="Full sync of kl queued")).to_be_visible()
    requested = _latest_sync(console_stack, owner.access, connector["id"])["requested_at"]
    shown = page.evaluate("t => new Date(t).toLocaleString()", requested)
    expect(last_sync).to_have_text(f"succeeded · {shown}", timeout=30_000)
    assert browser_page.errors == []


def test_connector_form_problems_show_once_at_their_field(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    owner = new_account(console_stack, "form-shop")
    assert console_stack.api(owner.access, "POST", "/api/segments/", {"name": "Buyers"})[0] == 201
    page = browser_page.page
    log_in(page, console_stack, owner)
    nav(page, "Connectors")
    page.get_by_role("button", name="New connector").click()
    dialog = page.get_by_role("dialog", name="New connector")
    dialog.get_by_label("Name").fill("Klaviyo buyers")
    # WHEN it is saved without a segment THEN it says to choose one, and sends nothing
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("textbox", name="Segment")).to_have_accessible_description("Choose a segment")
    assert sent == []
    # WHEN the segment is chosen and the template's empty list_id is saved
    dialog.get_by_role("textbox", name="Segment").click()
    dialog.get_by_role("option", name="Buyers").click()
    expect(dialog.get_by_text("Choose a segment")).to_have_count(0)
    dialog.get_by_role("button", name="Save").click()
    # THEN the API's message shows once, at the configuration box
    problem = dialog.get_by_role("alert")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("/config/list_id: ")
    expect(dialog.get_by_text("Something went wrong")).to_have_count(0)
    assert [e for e in browser_page.errors if "status of 400" not in e] == []
