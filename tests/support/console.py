"""Driving the web console in Chromium against a real `make dev` stack: sign-in, axe-core, API calls."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.devserver import call

REPO = Path(__file__).resolve().parents[2]
CONSOLE_DIST = REPO / "console" / "dist"
# axe-core is a dev dependency of the console (console/package.json); `make console` installs it.
AXE = REPO / "console" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = {"serious", "critical"}


@dataclass
class ConsoleStack:
    base: str
    owner_email: str
    owner_password: str
    tenant_id: int
    api_key: str

    def token(self, email: str | None = None, password: str | None = None) -> str:
        status, pair = call(
            self.base,
            "POST",
            "/api/auth/token/",
            {"email": email or self.owner_email, "password": password or self.owner_password},
        )
        assert status == 200, pair
        return str(pair["access"])

    def api(self, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(self.base, method, path, body, {"Authorization": f"Bearer {token}"})

    def track(self, api_key: str, events: list[dict[str, Any]]) -> None:
        status, body = call(
            self.base, "POST", "/api/ingestion/track/batch/", {"events": events}, {"Authorization": f"ApiKey {api_key}"}
        )
        assert status == 202 and body["queued"] == len(events), body

    def wait_for_events(self, api_key: str, total: int, timeout: float = 30) -> None:
        """The bus delivers asynchronously: wait until ClickHouse holds `total` events of the key's tenant."""
        deadline = time.monotonic() + timeout
        while True:
            _, stats = call(
                self.base, "GET", "/api/ingestion/stats/?window=24h", headers={"Authorization": f"ApiKey {api_key}"}
            )
            if stats.get("total_events") == total:
                return
            assert time.monotonic() < deadline, stats
            time.sleep(0.3)

    def mails(self) -> list[dict[str, Any]]:
        status, mails = call(self.base, "GET", "/dev/mailbox.json")
        assert status == 200, mails
        return list(mails)

    def link_sent_to(self, email: str, path: str) -> str:
        """The newest link to `path` mailed to `email` (the dev mailbox keeps what the dev mailer sent)."""
        for mail in self.mails():
            if mail["to"] == email:
                for link in mail["links"]:
                    if path in link:
                        return str(link)
        raise AssertionError(f"no mail to {email} with a link to {path}")


@dataclass
class Account:
    email: str
    password: str
    tenant_id: int
    access: str


def new_account(stack: ConsoleStack, slug: str) -> Account:
    """A verified owner of a fresh tenant, through the API and the dev mailbox (what a person does)."""
    email, password = f"owner@{slug}.example", "a long password"
    status, body = call(
        stack.base, "POST", "/api/auth/signup/", {"email": email, "password": password, "tenant_slug": slug}
    )
    assert status == 202, body
    token = stack.link_sent_to(email, "/verify-email").split("token=", 1)[1]
    status, signed_in = call(stack.base, "POST", "/api/auth/verify-email/", {"token": token, "password": password})
    assert status == 201, signed_in
    return Account(email, password, signed_in["tenant"]["id"], signed_in["access"])


def log_in(page: Page, stack: ConsoleStack, account: Account | None = None) -> None:
    page.goto(stack.base + "/login")
    page.get_by_label("Email").fill(account.email if account else stack.owner_email)
    page.get_by_label("Password").fill(account.password if account else stack.owner_password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Segments")).to_be_visible()


def nav(page: Page, name: str) -> None:
    """Follow a sidebar link (the way a person moves around; no reload, the session stays in memory)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def assert_accessible(page: Page, name: str) -> None:
    """axe-core over the page as rendered: no serious or critical violation."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    blocking = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
    assert blocking == [], f"{name}: {json.dumps(blocking, indent=1)}"
