"""The visual rule builder over every stored DSL fixture (tests/fixtures/dsl/): each renders, goes
builder → JSON → builder, and saving it unchanged sends and stores the identical JSON; an invalid
condition shows the API's message at its field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import BrowserPage
from tests.support.console import Account, ConsoleStack, assert_accessible, log_in, new_account

pytestmark = pytest.mark.slow

FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "dsl").glob("*.json"))


def _leaves(node: dict[str, Any]) -> int:
    return sum(_leaves(c) if "logic" in c and "type" not in c else 1 for c in node["conditions"])


def _groups(node: dict[str, Any]) -> int:
    return 1 + sum(_groups(c) for c in node["conditions"] if "logic" in c and "type" not in c)


@pytest.fixture(scope="module")
def account(console_stack: ConsoleStack) -> Account:
    return new_account(console_stack, "builder-lab")


def _open(page: Page, stack: ConsoleStack, segment_id: int) -> None:
    page.goto(f"{stack.base}/segments/{segment_id}")
    expect(page.get_by_role("group", name="Segment rules", exact=True)).to_be_visible()


def test_every_fixture_round_trips_unchanged(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    assert len(FIXTURES) >= 20
    page = browser_page.page
    log_in(page, console_stack, account)
    for fixture in FIXTURES:
        # GIVEN a segment stored with the fixture's definition
        status, created = console_stack.api(
            account.access,
            "POST",
            "/api/segments/",
            {"name": fixture.stem, "definition": json.loads(fixture.read_text())},
        )
        assert status == 201, (fixture.name, created)
        stored = created["definition"]
        # WHEN it is opened: every leaf condition and every group renders
        _open(page, console_stack, created["id"])
        conditions = page.locator('[data-node="condition"]')
        expect(conditions).to_have_count(_leaves(stored))
        expect(page.locator("[data-depth]")).to_have_count(_groups(stored))
        # AND it goes to the JSON tab and back, then is saved unchanged
        page.get_by_role("tab", name="JSON").click()
        expect(page.get_by_role("textbox", name="Definition JSON")).to_be_visible()
        page.get_by_role("tab", name="Builder").click()
        with page.expect_request(
            lambda r, i=created["id"]: r.method == "PATCH" and r.url.endswith(f"/api/segments/{i}/")
        ) as sent:
            page.get_by_role("button", name="Save").click()
        # THEN the saved JSON is the stored JSON, key order included, and so is what the API keeps
        body = json.loads(sent.value.post_data or "{}")
        assert json.dumps(body["definition"]) == json.dumps(stored), fixture.name
        expect(page.get_by_text("Saved as version")).to_be_visible()
        _, after = console_stack.api(account.access, "GET", f"/api/segments/{created['id']}/")
        assert json.dumps(after["definition"]) == json.dumps(stored), fixture.name
    assert_accessible(page, "builder")
    browser_page.screenshot("builder-mixed")
    assert browser_page.errors == []


def test_builder_edits_and_api_errors_land_at_the_field(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    log_in(page, console_stack, account)
    status, created = console_stack.api(account.access, "POST", "/api/segments/", {"name": "Edited"})
    assert status == 201
    _open(page, console_stack, created["id"])
    # GIVEN a condition built with the controls: event_count → where filter → nested OR group
    page.get_by_role("button", name="+ Condition").first.click()
    condition = page.get_by_role("group", name="Condition 1", exact=True)
    condition.get_by_role("textbox", name="Event type").fill("order_placed")
    condition.get_by_label("Within last (days)").fill("30")
    condition.get_by_role("button", name="+ where").click()
    where = page.get_by_role("group", name="Condition 1 where 1")
    where.get_by_role("textbox", name="Payload property").fill("shipping.address.city")
    where.get_by_label("Value").fill("Oslo")
    page.get_by_role("button", name="+ Group").first.click()
    # WHEN the count is made invalid
    condition.get_by_label("Count").fill("-1")
    # THEN the API's own message shows at that field (from the live preview's 400)
    expect(condition.get_by_text("Input should be greater than or equal to 0")).to_be_visible()
    assert_accessible(page, "builder-error")
    browser_page.screenshot("builder-error")
    # AND Save is refused with the same message at the same field, nothing stored
    page.get_by_role("button", name="Save").click()
    expect(condition.get_by_text("Input should be greater than or equal to 0")).to_be_visible()
    _, unchanged = console_stack.api(account.access, "GET", f"/api/segments/{created['id']}/")
    assert unchanged["definition"] is None
    # WHEN it is fixed and saved THEN the JSON is exactly what the controls said
    condition.get_by_label("Count").fill("2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved as version")).to_be_visible()
    _, saved = console_stack.api(account.access, "GET", f"/api/segments/{created['id']}/")
    assert saved["definition"] == {
        "logic": "AND",
        "conditions": [
            {
                "type": "event_count",
                "event_type": "order_placed",
                "operator": "gte",
                "value": 2,
                "window_days": 30,
                "where": [{"property": "shipping.address.city", "operator": "eq", "value": "Oslo"}],
            },
            {
                "logic": "AND",
                "conditions": [{"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}],
            },
        ],
    }
    # AND after one more save the Versions tab shows the two versions side by side, the change marked
    condition.get_by_label("Count").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved as version 2")).to_be_visible()
    page.get_by_role("tab", name="Versions").click()
    expect(page.get_by_role("textbox", name="Compare version")).to_have_value(re.compile(r"^v1 "))
    expect(page.get_by_role("textbox", name="With version")).to_have_value(re.compile(r"^v2 "))
    expect(page.locator('[data-kind="removed"]')).to_have_text(['-       "value": 2,'])
    expect(page.locator('[data-kind="added"]')).to_have_text(['+       "value": 3,'])
    assert_accessible(page, "versions")
    browser_page.screenshot("versions-diff")
    # the refused preview and save are the browser's only logged errors
    assert [e for e in browser_page.errors if "status of 400" not in e] == []


def test_a_definition_saved_meanwhile_is_not_overwritten(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    log_in(page, console_stack, account)
    theirs_rule = {"type": "event_count", "event_type": "order_completed", "operator": "gte", "value": 5}
    mine_rule = {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 2}
    status, created = console_stack.api(
        account.access,
        "POST",
        "/api/segments/",
        {"name": "Shared", "definition": {"logic": "AND", "conditions": [{**mine_rule, "value": 1}]}},
    )
    assert status == 201
    path = f"/api/segments/{created['id']}/"
    # GIVEN the segment open in the console, then renamed and deactivated by somebody else
    _open(page, console_stack, created["id"])
    condition = page.get_by_role("group", name="Condition 1", exact=True)
    assert console_stack.api(account.access, "PATCH", path, {"name": "Shared (renamed)", "active": False})[0] == 200
    # WHEN a count is edited and saved
    condition.get_by_label("Count").fill("2")
    with page.expect_request(lambda r: r.method == "PATCH" and r.url.endswith(path)) as first:
        page.get_by_role("button", name="Save").click()
    # THEN it is saved: a change of other fields is no conflict (the console sends again on the new ETag)
    assert first.value.headers["if-match"] == created["etag"]
    expect(page.get_by_text("Saved as version 2")).to_be_visible()
    _, saved = console_stack.api(account.access, "GET", path)
    assert saved["definition"]["conditions"] == [mine_rule] and saved["name"] == "Shared (renamed)"
    # WHEN somebody else then saves a definition of their own, and the count is edited and saved again
    status, theirs = console_stack.api(
        account.access, "PATCH", path, {"definition": {"logic": "AND", "conditions": [theirs_rule]}}
    )
    assert status == 200 and theirs["version"] == 3
    condition.get_by_label("Count").fill("4")
    page.get_by_role("button", name="Save").click()
    # THEN nothing is overwritten: the console says so and offers both ways out
    notice = page.get_by_role("alert").filter(has_text="This definition changed while you were editing it")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Somebody saved version 3")
    assert_accessible(page, "builder-conflict")
    browser_page.screenshot("builder-conflict")
    _, kept = console_stack.api(account.access, "GET", path)
    assert kept["definition"]["conditions"] == [theirs_rule] and kept["version"] == 3
    # WHEN their version is loaded THEN the editor shows it, and a save builds on it
    notice.get_by_role("button", name="Load version 3").click()
    expect(notice).to_be_hidden()
    expect(condition.get_by_role("textbox", name="Event type")).to_have_value("order_completed")
    expect(condition.get_by_label("Count")).to_have_value("5")
    condition.get_by_label("Count").fill("6")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved as version 4")).to_be_visible()
    _, built_on = console_stack.api(account.access, "GET", path)
    assert built_on["definition"]["conditions"] == [{**theirs_rule, "value": 6}]
    # AND after another conflict, saving over it keeps the console's edit as a new version
    assert (
        console_stack.api(account.access, "PATCH", path, {"definition": {"logic": "AND", "conditions": [mine_rule]}})[0]
        == 200
    )
    condition.get_by_label("Count").fill("7")
    page.get_by_role("button", name="Save").click()
    notice.get_by_role("button", name="Save mine over it").click()
    expect(page.get_by_text("Saved as version 6")).to_be_visible()
    _, over = console_stack.api(account.access, "GET", path)
    assert over["definition"]["conditions"] == [{**theirs_rule, "value": 7}] and over["version"] == 6
    # AND the browser logged nothing but the three refused saves (Chromium logs every 4xx response)
    assert (
        browser_page.errors
        == ["Failed to load resource: the server responded with a status of 412 (PRECONDITION FAILED)"] * 3
    )


def _type_json(page: Page, text: str) -> None:
    """Replace the JSON tab's text with `text`, as typed."""
    page.get_by_role("tab", name="JSON").click()
    page.get_by_role("textbox", name="Definition JSON").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(text)


def test_json_elements_that_are_not_objects_are_shown_in_the_builder(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    log_in(page, console_stack, account)
    page.goto(f"{console_stack.base}/segments/new")
    page.get_by_label("Name").fill("Typed by hand")
    # GIVEN a definition whose conditions and where filters hold things that are not objects
    rule = {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}
    _type_json(page, json.dumps({"logic": "AND", "conditions": [None, 1, {**rule, "where": [None]}]}))
    # WHEN the Builder tab is opened
    page.get_by_role("tab", name="Builder").click()
    # THEN each is named where it is (the API's preview message with it), and nothing typed is lost
    first = page.get_by_role("group", name="Condition 1", exact=True)
    expect(first).to_contain_text("Not an object: null")
    expect(first).to_contain_text("unknown condition")
    expect(page.get_by_role("group", name="Condition 2", exact=True)).to_contain_text("Not an object: 1")
    where = page.get_by_role("group", name="Condition 3 where 1")
    expect(where).to_contain_text("Not an object: null")
    expect(where).to_contain_text("Input should be a valid dictionary")
    expect(page.get_by_label("Name")).to_have_value("Typed by hand")
    browser_page.screenshot("builder-not-objects")
    # AND once they are removed, the rest is saved
    page.get_by_role("button", name="Remove Condition 1", exact=True).click()
    page.get_by_role("button", name="Remove Condition 1", exact=True).click()
    page.get_by_role("button", name="Remove Condition 1 where 1").click()
    expect(page.locator('[data-node="invalid"]')).to_have_count(0)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Typed by hand")).to_be_visible()
    _, listed = console_stack.api(account.access, "GET", "/api/segments/?limit=500")
    saved = next(s for s in listed["results"] if s["name"] == "Typed by hand")
    assert saved["definition"] == {"logic": "AND", "conditions": [{**rule, "where": []}]}
    assert [e for e in browser_page.errors if "status of 400" not in e] == []


def test_a_json_definition_without_conditions_is_sent_and_refused_at_its_fields(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    log_in(page, console_stack, account)
    page.goto(f"{console_stack.base}/segments/new")
    page.get_by_label("Name").fill("No conditions")
    rule = {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}
    for typed, shown in (({}, "/definition/logic: Field required"), (rule, "/definition/type: Extra inputs")):
        # GIVEN a JSON document without `conditions` WHEN it is saved
        _type_json(page, json.dumps(typed))
        with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/segments/")) as sent:
            page.get_by_role("button", name="Save").click()
        # THEN it is sent as typed, and the API's answer is shown at its pointers, not a script error
        assert json.loads(sent.value.post_data or "{}")["definition"] == typed
        expect(page.get_by_role("alert").filter(has_text=shown)).to_be_visible()
        expect(page.get_by_text("Something went wrong")).to_have_count(0)
    browser_page.screenshot("new-segment-no-conditions")
    assert [e for e in browser_page.errors if "status of 400" not in e] == []


def test_save_errors_show_once_at_their_field_until_it_is_edited(
    console_stack: ConsoleStack, account: Account, browser_page: BrowserPage
) -> None:
    page = browser_page.page
    log_in(page, console_stack, account)
    page.goto(f"{console_stack.base}/segments/new")
    # GIVEN a name that is too long WHEN it is saved THEN the message shows once, under Name
    page.get_by_label("Name").fill("n" * 300)
    page.get_by_role("button", name="Save").click()
    too_long = page.get_by_text("String should have at most 200 characters")
    expect(too_long).to_have_count(1)
    expect(page.get_by_label("Name")).to_have_accessible_description(re.compile("at most 200 characters"))
    page.get_by_label("Name").fill("Counted")
    # GIVEN a condition whose count is refused by the save
    page.get_by_role("button", name="+ Condition").first.click()
    condition = page.get_by_role("group", name="Condition 1", exact=True)
    condition.get_by_label("Count").fill("-1")
    expect(page.get_by_text("Fix the highlighted fields to see a preview.")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    refused = condition.get_by_text("Input should be greater than or equal to 0")
    expect(refused).to_be_visible()
    # WHEN the count is fixed THEN the preview runs and the save's message is gone
    condition.get_by_label("Count").fill("2")
    expect(page.get_by_test_id("preview-count")).to_be_visible()
    expect(refused).to_have_count(0)
    # AND a new condition in its place does not inherit it
    condition.get_by_label("Count").fill("-1")
    page.get_by_role("button", name="Save").click()
    expect(refused).to_be_visible()
    page.get_by_role("button", name="Remove Condition 1", exact=True).click()
    page.get_by_role("button", name="+ Condition").first.click()
    expect(condition.get_by_label("Count")).to_have_value("1")
    expect(page.get_by_test_id("preview-count")).to_be_visible()
    expect(refused).to_have_count(0)
    assert [e for e in browser_page.errors if "status of 400" not in e] == []
