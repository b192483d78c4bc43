"""Browser ingestion in real Chromium: a page on one origin loads the built TypeScript SDK and sends
events with a publishable key to the stack on another origin (CORS preflight, keepalive flush on
`pagehide`); the same key used by a page on an origin it does not list is refused. Pages also send
as analytics.js does on leaving: `sendBeacon` with the write key inside a `text/plain` body."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from segops.localstack import LocalStack

from tests.support.api import Account, Api
from tests.support.browser import BrowserPage
from tests.support.builds import require_built
from tests.support.ingestion import error_rows, stored_events

SDK_DIST = Path(__file__).resolve().parents[3] / "sdk" / "typescript" / "dist"

PAGE = b"""<!doctype html><html><head><title>shop</title><link rel="icon" href="data:,"></head><body><p id="ready"></p>
<script type="module">
import { SegOpsClient } from '/sdk/index.js';
const params = new URLSearchParams(location.search);
window.sdkErrors = [];
const segops = new SegOpsClient({
  apiUrl: params.get('api'), apiKey: params.get('key'), flushIntervalMs: 3600000, maxRetries: 0,
  onError: (error) => window.sdkErrors.push({ kind: error.kind, message: error.message }),
});
segops.track({ userId: 'browser-user', eventType: 'page_viewed', payload: { path: location.pathname } });
window.flushNow = () => segops.flush();
window.trackLeaving = () => segops.track({ userId: 'browser-user', eventType: 'page_left' });
document.getElementById('ready').textContent = 'ready';
</script></body></html>"""


class PageServer:
    """A static site on its own loopback port (its own origin): the page above and the built SDK."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/":
                    body, kind = PAGE, "text/html; charset=utf-8"
                elif path.startswith("/sdk/") and (SDK_DIST / path[5:]).resolve().is_relative_to(SDK_DIST):
                    file = (SDK_DIST / path[5:]).resolve()
                    if not file.is_file():
                        self.send_error(404)
                        return
                    body, kind = file.read_bytes(), "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def shop() -> Iterator[PageServer]:
    require_built(SDK_DIST / "index.js", "typescript-sdk")
    server = PageServer()
    yield server
    server.close()


def _publishable_key(stack: LocalStack, account: Account, origin: str) -> str:
    body = {"name": "shop", "kind": "publishable", "allowed_origins": [origin]}
    response = Api(stack).post("/api/keys/", body, headers=account.bearer)
    assert response.status_code == 201, response.get_data(as_text=True)
    key: str = response.get_json()["key"]
    return key


def _open(browser_page: BrowserPage, origin: str, served: str, key: str) -> Any:
    page = browser_page.page
    page.goto(f"{origin}/?api={served}&key={key}")
    page.wait_for_function("document.getElementById('ready').textContent === 'ready'")
    return page


def test_a_page_on_an_allowed_origin_sends_events_cross_origin(
    stack: LocalStack, served: str, account: Account, shop: PageServer, browser_page: BrowserPage
) -> None:
    # GIVEN a publishable key listing the shop's origin, and the shop's page using the SDK with it
    key = _publishable_key(stack, account, shop.origin)
    page = _open(browser_page, shop.origin, served, key)
    # WHEN the SDK flushes (a CORS request with a preflight), then the page is left with one more event
    page.evaluate("window.flushNow()")
    assert page.evaluate("window.sdkErrors") == []
    page.evaluate("window.trackLeaving()")
    page.goto("about:blank")  # pagehide: the SDK flushes with fetch keepalive
    # THEN both events reached the stack, exactly once
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        stack.bus.drain()
        rows = stored_events(stack, account.tenant_id)
        if len(rows) >= 2:
            break
        page.wait_for_timeout(100)
    assert sorted(r["event_type"] for r in rows) == ["page_left", "page_viewed"]
    assert all(r["user_id"] == "browser-user" for r in rows)
    assert browser_page.errors == []


def test_a_page_on_an_origin_the_key_does_not_list_is_refused(
    stack: LocalStack, served: str, account: Account, shop: PageServer, browser_page: BrowserPage
) -> None:
    # GIVEN a publishable key that lists only another origin
    key = _publishable_key(stack, account, "https://www.example.com")
    page = _open(browser_page, shop.origin, served, key)
    # WHEN the shop's page sends with it, and also tries to read the answer itself
    page.evaluate("window.flushNow()")
    direct = page.evaluate(
        """async ([api, key]) => {
          try {
            const response = await fetch(`${api}/api/ingestion/track/`, { method: 'POST',
              headers: { Authorization: `ApiKey ${key}`, 'Content-Type': 'application/json' },
              body: JSON.stringify({ user_id: 'u', event_type: 'page_viewed' }) });
            return `read ${response.status}`;
          } catch (error) { return `blocked: ${error.name}`; }
        }""",
        [served, key],
    )
    # THEN the browser could not read the refusal (no CORS grant), the SDK reports the loss, nothing stored
    assert direct == "blocked: TypeError"
    assert [e["kind"] for e in page.evaluate("window.sdkErrors")] != []
    stack.bus.drain()
    assert stored_events(stack, account.tenant_id) == []
    assert error_rows(stack, account.tenant_id) == []


@pytest.fixture
def plain_origin() -> Iterator[PageServer]:
    """A page origin without the SDK (sendBeacon needs no library)."""
    server = PageServer()
    yield server
    server.close()


BEACON = """([api, key, path, body]) =>
  navigator.sendBeacon(`${api}${path}`, JSON.stringify({ writeKey: key, ...body }))"""


def _beacon_status(page: Any, served: str, key: str, path: str, body: dict[str, Any]) -> int:
    """Send one beacon and return the status the stack answered (the page itself cannot read it)."""
    with page.expect_response(lambda response: response.url == f"{served}{path}") as answer:
        assert page.evaluate(BEACON, [served, key, path, body]) is True
    status: int = answer.value.status
    return status


def test_analytics_js_style_beacons_with_the_write_key_in_a_text_body(
    stack: LocalStack, served: str, account: Account, plain_origin: PageServer, browser_page: BrowserPage
) -> None:
    # GIVEN a page on an origin the publishable key lists, and one on an origin it does not
    key = _publishable_key(stack, account, plain_origin.origin)
    page = browser_page.page
    page.goto(f"{plain_origin.origin}/no-sdk-here")  # any document of that origin
    # WHEN it sends as analytics.js does on leaving a page: sendBeacon, a text/plain JSON body (no
    # preflight, no Authorization header), the write key inside it, one call and one batch
    single = {"type": "track", "event": "Checkout Left", "anonymousId": "anon-b", "messageId": "beacon-1"}
    batch = {"batch": [{"type": "page", "anonymousId": "anon-b", "messageId": "beacon-2"}]}
    assert _beacon_status(page, served, key, "/v1/t", single) == 200
    assert _beacon_status(page, served, key, "/v1/b", batch) == 200
    # THEN both arrive, once each
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        stack.bus.drain()
        rows = stored_events(stack, account.tenant_id)
        if len(rows) >= 2:
            break
        page.wait_for_timeout(100)
    assert sorted((r["user_id"], r["event_type"]) for r in rows) == [
        ("anon-b", "checkout_left"),
        ("anon-b", "page_viewed"),
    ]
    # AND the same beacon from a page on another origin is refused (403, nothing stored)
    other = PageServer()
    try:
        page.goto(f"{other.origin}/elsewhere")
        assert _beacon_status(page, served, key, "/v1/t", single | {"messageId": "beacon-3"}) == 403
    finally:
        other.close()
    stack.bus.drain()
    assert len(stored_events(stack, account.tenant_id)) == 2
