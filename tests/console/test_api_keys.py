"""Settings → API Keys: + New Key starts from the least privilege every time, and makes secret or
publishable keys (allowed origins one per line, the API's refusal shown at that box); the list shows
each key's kind and origins."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import BrowserPage
from tests.support.console import ConsoleStack, assert_accessible, log_in, nav, new_account

pytestmark = pytest.mark.slow


def test_new_key_dialog_makes_secret_and_publishable_keys(
    console_stack: ConsoleStack, browser_page: BrowserPage
) -> None:
    owner = new_account(console_stack, "keys-shop")
    page = browser_page.page
    log_in(page, console_stack, owner)
    nav(page, "API Keys")
    dialog = page.get_by_role("dialog")
    # GIVEN an admin key was made
    page.get_by_role("button", name="+ New Key").click()
    dialog.get_by_label("Name").fill("deploys")
    dialog.get_by_role("textbox", name="Role").click()
    dialog.get_by_role("option", name="admin").click()
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_test_id("new-api-key")).to_contain_text("sk_live_")
    dialog.get_by_role("button", name="Done").click()
    # WHEN the dialog is opened again THEN it starts over: no name, the default role, a secret key
    page.get_by_role("button", name="+ New Key").click()
    expect(dialog.get_by_label("Name")).to_have_value("")
    expect(dialog.get_by_role("textbox", name="Role")).to_have_value("member")
    expect(dialog.get_by_role("radio", name="Secret")).to_be_checked()
    # WHEN a publishable key is asked for with an origin the API refuses
    dialog.get_by_label("Name").fill("web")
    dialog.get_by_role("radio", name="Publishable").check()
    expect(dialog.get_by_role("textbox", name="Role")).to_have_count(0)
    origins = dialog.get_by_role("textbox", name="Allowed origins")
    origins.fill("https://www.example.com\nhttps://www.example.com/checkout")
    assert_accessible(page, "api-key-publishable")
    browser_page.screenshot("api-key-publishable")
    dialog.get_by_role("button", name="Create key").click()
    # THEN the API's message names that origin at the box
    expect(origins).to_have_accessible_description(
        re.compile(r"^https://www\.example\.com/checkout: String should match pattern ")
    )
    # WHEN the origins are fixed THEN a publishable key is made, shown once
    origins.fill("https://www.example.com\n\nhttps://shop.example.com:443\n")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_test_id("new-api-key")).to_contain_text("pk_live_")
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    # AND the list tells the kinds apart and shows the publishable key's origins
    web = page.get_by_role("row").filter(has=page.get_by_role("cell", name="web", exact=True))
    expect(web).to_contain_text("publishable")
    expect(web.get_by_text("https://www.example.com", exact=True)).to_be_visible()
    expect(web.get_by_text("https://shop.example.com", exact=True)).to_be_visible()
    deploys = page.get_by_role("row").filter(has=page.get_by_role("cell", name="deploys", exact=True))
    expect(deploys).to_contain_text("secret")
    assert_accessible(page, "api-keys-kinds")
    browser_page.screenshot("api-keys-kinds")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("navigation", name="Main")).not_to_be_in_viewport()
    browser_page.screenshot("api-keys-kinds-390")
    _, listed = console_stack.api(owner.access, "GET", "/api/keys/")
    assert sorted((k["name"], k["kind"], k["role"], sorted(k["allowed_origins"])) for k in listed["results"]) == [
        ("deploys", "secret", "admin", []),
        ("web", "publishable", "member", ["https://shop.example.com", "https://www.example.com"]),
    ]
    assert [e for e in browser_page.errors if "status of 400" not in e] == []
