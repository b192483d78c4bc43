"""A segment's details and its removal in the console: "Edit details" (name, description) and
"Delete", both sent with If-Match; a change made meanwhile by somebody else is neither overwritten
nor deleted unseen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import BrowserPage
from tests.support.console import Account, ConsoleStack, assert_accessible, log_in, new_account

pytestmark = pytest.mark.slow

REFUSED = "Failed to load resource: the server responded with a status of 412 (PRECONDITION FAILED)"


@pytest.fixture(scope="module")
def account(console_stack: ConsoleStack) -> Account:
    return new_account(console_stack, "details-lab")


def _opened(page: Page, stack: ConsoleStack, account: Account, name: str) -> str:
    """A new segment named `name`, its page open in the console; its API path."""
    log_in(page, stack, account)
    status, created = stack.api(account.access, "POST", "/api/segments/", {"name": name, "description": "old"})
    assert status == 201, created
    page.goto(f"{stack.base}/segments/{created['id']}")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    return f"/api/segments/{created['id']}/"


def test_details_are_edited_and_a_rename_meanwhile_is_not_overwritten(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    path = _opened(page, console_stack, account, "Churn risk")
    # WHEN its details are edited and saved
    page.get_by_role("button", name="Edit details").click()
    dialog = page.get_by_role("dialog", name="Edit segment details")
    dialog.get_by_label("Name").fill("Churn risk (EU)")
    dialog.get_by_label("Description").fill("Customers in the EU at risk of churning")
    assert_accessible(page, "segment-details")
    browser_page.screenshot("segment-details")
    dialog.get_by_role("button", name="Save details").click()
    # THEN the page and the API show them
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("heading", name="Churn risk (EU)")).to_be_visible()
    expect(page.get_by_text("Customers in the EU at risk of churning")).to_be_visible()
    _, saved = console_stack.api(account.access, "GET", path)
    assert (saved["name"], saved["description"]) == ("Churn risk (EU)", "Customers in the EU at risk of churning")
    # WHEN somebody else renames it while the dialog is open, and the dialog is saved
    page.get_by_role("button", name="Edit details").click()
    dialog.get_by_label("Name").fill("Mine")
    assert console_stack.api(account.access, "PATCH", path, {"name": "Theirs"})[0] == 200
    dialog.get_by_role("button", name="Save details").click()
    # THEN theirs is kept, the dialog says so, and the page shows the segment as it now is
    expect(dialog.get_by_role("alert")).to_contain_text("Somebody changed this segment since the page loaded it")
    expect(page.get_by_role("heading", name="Theirs")).to_be_visible()
    assert console_stack.api(account.access, "GET", path)[1]["name"] == "Theirs"
    # AND saved again from a fresh dialog, the edit goes through
    dialog.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Edit details").click()
    expect(dialog.get_by_label("Name")).to_have_value("Theirs")
    dialog.get_by_label("Name").fill("Mine")
    dialog.get_by_role("button", name="Save details").click()
    expect(page.get_by_role("heading", name="Mine")).to_be_visible()
    assert browser_page.errors == [REFUSED]


def test_a_segment_changed_while_its_delete_dialog_is_open_is_kept(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    path = _opened(page, console_stack, account, "Short-lived")
    # GIVEN the delete dialog open, and the segment changed by somebody else meanwhile
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog", name="Delete segment?")
    expect(dialog).to_contain_text("Short-lived")
    assert_accessible(page, "segment-delete")
    assert console_stack.api(account.access, "PATCH", path, {"description": "now used by a campaign"})[0] == 200
    # WHEN the deletion is confirmed
    dialog.get_by_role("button", name="Delete segment").click()
    # THEN it is kept, and the page reloads it with the change
    expect(dialog.get_by_role("alert")).to_contain_text("Somebody changed this segment")
    assert console_stack.api(account.access, "GET", path)[0] == 200
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("now used by a campaign")).to_be_visible()
    # WHEN it is deleted as it now is
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog.get_by_role("button", name="Delete segment").click()
    # THEN the list is shown without it, and it is gone from the API
    expect(page).to_have_url(f"{console_stack.base}/segments")
    expect(page.get_by_role("heading", name="Segments")).to_be_visible()
    expect(page.get_by_role("link", name="Short-lived")).to_have_count(0)
    assert console_stack.api(account.access, "GET", path)[0] == 404
    assert browser_page.errors == [REFUSED]
