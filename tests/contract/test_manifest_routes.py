"""Every public path of API.md reaches the function API.md names, through the manifest's routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from segops.manifest import HttpTrigger, Manifest, load_manifest, route_for

from tests.support.api_contract import public_paths

FULL_MANIFEST = Path(__file__).resolve().parents[1] / "support" / "manifest.full.json"


def _misrouted(manifest: Manifest, only_present: bool) -> list[str]:
    present = {f.name for f in manifest.functions}
    problems = []
    for public in public_paths():
        if only_present and public.function not in present:
            continue  # its function has not landed in this manifest yet
        served = route_for(manifest, public.path)
        if served is None or served.name != public.function:
            problems.append(f"{public.path}: API.md says {public.function}, routes give {served and served.name}")
    return problems


def test_api_md_is_parsed_into_many_paths() -> None:
    # GIVEN the handbook's endpoint table THEN every row yields paths (the checks below are not vacuous)
    paths = public_paths()
    assert len(paths) >= 25
    assert {p.function for p in paths} >= {"api", "track", "track_batch", "shopify_webhook", "membership", "sandbox"}


def test_every_public_path_of_the_real_manifest_reaches_its_function() -> None:
    # GIVEN functions/manifest.json WHEN each API.md path is matched like the URL map matches it
    manifest = load_manifest()
    # THEN each path whose function is in the manifest lands on that function
    assert _misrouted(manifest, only_present=True) == []
    assert any(p.function in {f.name for f in manifest.functions} for p in public_paths())


def test_the_planned_full_function_set_routes_every_public_path() -> None:
    # GIVEN the full planned function set (tests/support/manifest.full.json) THEN no API.md path is unrouted
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
