from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from segops.ai.vocabulary import Vocabulary, tenant_vocabulary
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import migrate

from tests.support import ai_dataset
from tests.support.dsl_reference import Event
from tests.support.segment_api import EVENT_COLUMNS, event_row

TENANT = 16


@pytest.fixture(scope="module")
def dataset_events() -> list[Event]:
    return ai_dataset.events()


@pytest.fixture(scope="module")
def dataset_warehouse(chdb_path: Path, dataset_events: list[Event]) -> ChdbWarehouse:
    """GIVEN the generated tenant's events in a migrated warehouse of its own"""
    wh = ChdbWarehouse(chdb_path, f"ai_{uuid.uuid4().hex[:12]}")
    migrate(wh)
    rows = [event_row(TENANT, e.user_id, e.event_type, e.occurred_at, e.payload) for e in dataset_events]
    wh.insert("events", EVENT_COLUMNS, rows)
    return wh


@pytest.fixture(scope="module")
def vocabulary(dataset_warehouse: ChdbWarehouse) -> Vocabulary:
    return tenant_vocabulary(dataset_warehouse, TENANT)
