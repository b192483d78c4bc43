"""Every path of docs/api.md reaches the function docs/api.md names, through the manifest's routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from segops.manifest import HttpTrigger, Manifest, load_manifest, route_for

from tests.support.api_contract import documented_endpoints

FULL_MANIFEST = Path(__file__).resolve().parents[1] / "support" / "manifest.full.json"


def _misrouted(manifest: Manifest, only_present: bool) -> list[str]:
    present = {f.name for f in manifest.functions}
    problems = []
    for endpoint in documented_endpoints():
        if only_present and endpoint.function not in present:
            continue  # its function has not landed in this manifest yet
        served = route_for(manifest, endpoint.concrete_path)
        if served is None or served.name != endpoint.function:
            got = served and served.name
            problems.append(f"{endpoint.path}: docs/api.md says {endpoint.function}, routes give {got}")
    return problems


def test_api_md_is_parsed_into_many_paths() -> None:
    # GIVEN the endpoint table of docs/api.md THEN every row yields a path (the checks below are not vacuous)
    endpoints = documented_endpoints()
    assert len(endpoints) >= 40
    functions = {e.function for e in endpoints}
    assert functions >= {"api", "track", "track_batch", "shopify_webhook", "membership", "sandbox"}


def test_every_public_path_of_the_real_manifest_reaches_its_function() -> None:
    # GIVEN functions/manifest.json WHEN each docs/api.md path is matched like the URL map matches it
    manifest = load_manifest()
    # THEN each path whose function is in the manifest lands on that function
    assert _misrouted(manifest, only_present=True) == []
    assert any(e.function in {f.name for f in manifest.functions} for e in documented_endpoints())


def test_the_planned_full_function_set_routes_every_public_path() -> None:
    # GIVEN the full planned function set (tests/support/manifest.full.json) THEN no docs/api.md path is unrouted
    assert _misrouted(load_manifest(FULL_MANIFEST), only_present=False) == []


@pytest.mark.parametrize("path", [Path("functions/manifest.json"), FULL_MANIFEST], ids=["real", "full"])
def test_no_route_is_claimed_twice(path: Path) -> None:
    # A URL map rejects the same path in two path rules.
    manifest = load_manifest(path if path.is_absolute() else Path(__file__).resolve().parents[2] / path)
    routes = [r for f in manifest.http_functions() if isinstance(f.trigger, HttpTrigger) for r in f.trigger.routes]
    assert len(routes) == len(set(routes))
    # URL-map path syntax: absolute, `*` only as a whole last segment.
    for route in routes:
        assert route.startswith("/") and "*" not in route.rstrip("*"), route
        assert not route.endswith("*") or route.endswith("/*"), route
