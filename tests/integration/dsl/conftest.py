from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import migrate


@pytest.fixture(scope="module")
def warehouse(chdb_path: Path) -> ChdbWarehouse:
    """GIVEN a migrated warehouse of its own (tests keep apart by tenant id)."""
    wh = ChdbWarehouse(chdb_path, f"dsl_{uuid.uuid4().hex[:12]}")
    migrate(wh)
    return wh
