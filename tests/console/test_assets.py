"""`make dev` serves the built console at `/` beside the API: client routes fall back to index.html,
no function route (`/api/*`, `/v1/*`) is shadowed, hashed assets are cached for good, nothing
outside the build is served."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from segops.catalog import openapi_document
from segops.console import ConsoleAssets, with_console
from segops.localstack import LocalStack
from werkzeug.test import Client

from tests.support.builds import require_built
from tests.support.console import CONSOLE_DIST


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def test_client_routes_fall_back_to_index_and_assets_are_immutable(dist: Path) -> None:
    client = Client(ConsoleAssets(dist))
    for path in ("/", "/segments", "/segments/42", "/settings/api-keys", "/invitations/accept?token=x"):
        page = client.get(path)
        assert (page.status_code, page.mimetype, page.headers["Cache-Control"]) == (200, "text/html", "no-cache"), path
        assert b"<title>console</title>" in page.data
    asset = client.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.mimetype in {"text/javascript", "application/javascript"}
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # a missing asset is a 404, not index.html served as a script
    missing = client.get("/assets/index-old.js")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_nothing_outside_the_build_and_only_reads(dist: Path) -> None:
    client = Client(ConsoleAssets(dist))
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        response = client.get(path)
        assert b"outside the build" not in response.data, path
    refused = client.post("/segments")
    assert refused.status_code == 405 and set(refused.get_json()["error"]) == {"code", "message", "details"}


def test_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    response = Client(ConsoleAssets(tmp_path / "nothing")).get("/segments")
    assert response.status_code == 404
    assert "make dev" in response.get_json()["error"]["message"]


def test_api_paths_reach_the_stack_never_the_console(stack: LocalStack, dist: Path) -> None:
    client = Client(with_console(stack, ConsoleAssets(dist)))
    assert client.get("/api/ingestion/health/").get_json() == {"pubsub_topic": "ok", "worker": "ok", "clickhouse": "ok"}
    unknown = client.get("/api/no-such-endpoint/")
    assert unknown.status_code == 404 and unknown.mimetype == "application/json"
    # every function route is the stack's, /v1/* (the Segment-compatible API) included
    assert client.post("/v1/track", json={}).mimetype == "application/json"
    assert client.get("/segments").mimetype == "text/html"


INITIAL_ROUTE_BUDGET = 350 * 1024  # gzipped JavaScript a first visit to any page downloads (issue #15)


def test_every_route_loads_at_most_350_kb_of_gzipped_javascript() -> None:
    # GIVEN the build's chunk graph (Vite's manifest: every chunk with its static imports)
    manifest_path = CONSOLE_DIST / ".vite" / "manifest.json"
    require_built(manifest_path, "console")
    chunks: dict[str, dict[str, Any]] = json.loads(manifest_path.read_text())

    def closure(key: str, found: set[str]) -> set[str]:
        if key not in found:
            found.add(key)
            for imported in chunks[key].get("imports", []):
                closure(imported, found)
        return found

    def gzipped(keys: set[str]) -> int:
        return sum(len(gzip.compress((CONSOLE_DIST / chunks[k]["file"]).read_bytes(), 9)) for k in keys)

    (entry,) = [key for key, chunk in chunks.items() if chunk.get("isEntry")]
    shell = closure(entry, set())
    pages = [key for key, chunk in chunks.items() if chunk.get("isDynamicEntry") and key.startswith("src/pages/")]
    # WHEN each page is the first one opened THEN its JavaScript (the shell plus the page) fits the budget
    sizes = {page: gzipped(closure(page, set(shell))) for page in pages}
    assert len(pages) >= 12
    assert max(sizes.values()) <= INITIAL_ROUTE_BUDGET, sizes
    # AND the sign-in page is in the shell itself, and the JSON editor is not
    assert gzipped(shell) <= 250 * 1024
    assert not any("JsonEditor" in key for key in shell)


def test_the_console_types_are_generated_from_the_current_openapi_document(tmp_path: Path) -> None:
    # GIVEN the OpenAPI document the API serves WHEN openapi-typescript (the console's generator) runs
    generator = CONSOLE_DIST.parent / "node_modules" / ".bin" / "openapi-typescript"
    require_built(generator, "console")
    document = tmp_path / "openapi.json"
    document.write_bytes(openapi_document())
    generated = tmp_path / "schema.d.ts"
    subprocess.run([str(generator), str(document), "-o", str(generated)], check=True, capture_output=True, timeout=60)
    # THEN the committed types are exactly its output (regenerate with `npm run schema` after an API change)
    committed = CONSOLE_DIST.parent / "src" / "api" / "schema.d.ts"
    assert generated.read_text() == committed.read_text()
