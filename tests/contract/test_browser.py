"""The real browser the console and browser-ingestion tests use: Debian's Chromium through Playwright."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.browser import BrowserPage

PAGE = b"""<!doctype html><html><head><title>probe</title></head><body>
<button id="go" onclick="document.getElementById('out').textContent = 'clicked'">Go</button>
<p id="out"></p><script>console.error("boom from the page"); console.warn("careful"); console.log("fine")</script>
</body></html>"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_renders_clicks_and_reports_console_errors_and_warnings(
    browser_page: BrowserPage, page_url: str
) -> None:
    # GIVEN a page served on loopback WHEN Chromium loads it and a button is clicked
    browser_page.page.goto(page_url)
    browser_page.page.get_by_role("button", name="Go").click()
    # THEN the DOM changed, the console error and warning were recorded and a screenshot was written
    assert browser_page.page.title() == "probe"
    assert browser_page.page.locator("#out").text_content() == "clicked"
    assert browser_page.errors == ["boom from the page", "warning: careful"]
    assert browser_page.screenshot("browser-probe").stat().st_size > 0
