"""Shared fixtures. One chDB data directory serves the whole test process (chDB's rule); every
stack gets its own database inside it, its own control-plane directory and its own bus."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from segops.config import Settings
from segops.localstack import LocalStack

from tests.support.schema import copy_migrated_schema

# Real components (GCS, Valkey, ClickHouse HTTP, Pub/Sub, Chromium) and the stack served over HTTP
# (`served`) as fixtures for every test directory, and the secret scan of every test's log output.
pytest_plugins = [
    "tests.support.servers",
    "tests.support.secret_manager",
    "tests.support.browser",
    "tests.support.served",
    "tests.support.log_secrets",
]

_EXIT_STATUS = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def settings(tmp_path: Path, chdb_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        chdb_path=chdb_path,
        clickhouse_database=f"t_{uuid.uuid4().hex[:12]}",
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        bus_retry_base_seconds=0,
        # The bus is drained one delivery at a time here: a flush never has company to wait for.
        writer_flush_seconds=0,
        # A drain that follows a write would otherwise sleep out the debounce window (2 s) before the
        # delta compute it triggers; tests of the coalescing itself set their own window.
        compute_debounce_seconds=0,
        jwt_secret="test-secret-" + uuid.uuid4().hex,
    )


@pytest.fixture
def stack(settings: Settings) -> Iterator[LocalStack]:
    """GIVEN the whole stack in-process, exactly as `make dev` wires it (bus drained by the test), on a
    copy of the migrated schema (`tests/support/schema.py`)."""
    copy_migrated_schema(settings)
    local = LocalStack(settings)
    try:
        yield local
    finally:
        local.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without chDB's C++ static destructors, which occasionally crash after a clean close
    (see `segops.warehouse.chdb_backend.shutdown_embedded`); the report is already printed."""
    status = config.stash.get(_EXIT_STATUS, None)
    if status is None:
        return
    from segops.warehouse.chdb_backend import shutdown_embedded

    shutdown_embedded()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
