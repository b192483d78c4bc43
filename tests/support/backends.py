"""A fresh database on either warehouse backend: chDB in-process, or clickhouse-connect over
ClickHouse's HTTP protocol (`tests/support/clickhouse_http.py`, executing on the same chDB engine)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from segops.warehouse.base import Warehouse
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse
from segops.warehouse.migrations import migrate

from tests.support.clickhouse_http import ChdbHttpServer

BACKENDS = ["chdb", "clickhouse"]


@contextmanager
def fresh_database(request: pytest.FixtureRequest, chdb_path: Path, *, migrated: bool = True) -> Iterator[Warehouse]:
    """A database of its own on the backend `request.param` names, dropped afterwards."""
    database = f"w_{uuid.uuid4().hex[:12]}"
    built: Warehouse
    if request.param == "chdb":
        built = ChdbWarehouse(chdb_path, database)
    else:
        server: ChdbHttpServer = request.getfixturevalue("clickhouse_http")
        built = ClickHouseWarehouse(server.url, "default", "", database)
    if migrated:
        migrate(built)
    try:
        yield built
    finally:
        built.command(f"DROP DATABASE IF EXISTS `{database}`")
        built.close()
