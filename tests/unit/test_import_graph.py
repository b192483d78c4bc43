"""The import graph of `segops`: no cycle (deferred and TYPE_CHECKING imports included), and layers
that only ever import downwards — function entry points, then domains, then the platform, then
backends, then plain definitions."""

from __future__ import annotations

import ast
import graphlib
import re

import grimp
import pytest
from segops.manifest import load_manifest

# Highest first. A module belongs to the longest name that prefixes it; it may import its own layer
# and any layer below, never one above.
LAYERS: list[tuple[str, ...]] = [
    ("segops.devserver", "segops.console", "segops.localstack", "segops.catalog", "segops.ops"),
    # What a Cloud Function calls: HTTP dispatch (with authentication, which asks tenancy) and the
    # Pub/Sub consumer loop.
    ("segops.http.app", "segops.http.authentication", "segops.http.openapi", "segops.bus.consumer"),
    # A compute reads down through its steps (plan → evaluate → publish): the membership writer and
    # every other domain sit below it and never call back into it.
    ("segops.compute",),
    (
        "segops.tenancy",
        "segops.segments",
        "segops.membership",
        "segops.exports",
        "segops.connectors",
        "segops.ingestion",
        "segops.shopify",
        "segops.sandbox",
        "segops.health",
        "segops.dsl",
        "segops.ai",
        "segops.lookalike",
    ),
    ("segops.runtime", "segops.http", "segops.auth", "segops.metering", "segops.limits"),
    ("segops.warehouse", "segops.cache", "segops.store", "segops.objects", "segops.bus", "segops.tenant_secrets"),
    ("segops.errors", "segops.config", "segops.manifest", "segops.logs", "segops.messages", "segops"),
]

# The composition root builds the membership feed connectors read (a typed `Runtime` field).
UPWARD_ALLOWED = {
    ("segops.runtime", "segops.connectors.feed"),
    ("segops.runtime", "segops.connectors.warehouse_feed"),
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("segops", include_external_packages=True)


def _layer(module: str) -> int:
    matches = [
        (len(name), index)
        for index, names in enumerate(LAYERS)
        for name in names
        if module == name or module.startswith(name + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def _internal(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m == "segops" or m.startswith("segops."))


def test_there_is_no_import_cycle(graph: grimp.ImportGraph) -> None:
    modules = _internal(graph)
    sorter = graphlib.TopologicalSorter(
        {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("segops")} for m in modules}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_layers_only_import_downwards(graph: grimp.ImportGraph) -> None:
    upward = [
        f"{importer} -> {imported}"
        for importer in _internal(graph)
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if imported.startswith("segops")
        and _layer(imported) < _layer(importer)
        and (importer, imported) not in UPWARD_ALLOWED
    ]
    assert upward == []


def test_the_package_never_imports_the_functions_tests_or_tools(graph: grimp.ImportGraph) -> None:
    # Function adapters (functions/), tests and tooling sit above the package: it cannot know them.
    outside = {"functions", "tests", "benchmarks", "infra"}
    found = {
        f"{importer} -> {imported}"
        for importer in _internal(graph)
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] in outside
    }
    assert found == set()


def test_function_adapters_reach_only_entry_points_and_domains() -> None:
    # functions/<name>/main.py sit on top: they call an HTTP app, the consumer loop or a domain
    # handler, never a backend or the platform directly.
    domains = 3  # the compute layer and the domains under it
    found = {}
    for function in load_manifest().functions:
        for node in ast.walk(ast.parse(function.source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segops"):
                found[f"{function.name}: {node.module}"] = _layer(node.module)
    assert found, "function adapters import segops"
    assert {name: layer for name, layer in found.items() if layer > domains} == {}


def test_a_cycle_and_an_upward_import_are_caught() -> None:
    # The checks above see what they claim to: a graph with both defects fails them.
    graph = grimp.ImportGraph()
    for module in ("segops.errors", "segops.warehouse.base", "segops.tenancy.service"):
        graph.add_module(module)
    graph.add_import(importer="segops.warehouse.base", imported="segops.tenancy.service")
    graph.add_import(importer="segops.tenancy.service", imported="segops.warehouse.base")
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_there_is_no_import_cycle(graph)
    with pytest.raises(AssertionError, match=re.escape("segops.warehouse.base -> segops.tenancy.service")):
        test_layers_only_import_downwards(graph)
