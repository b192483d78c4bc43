"""The syntactic tenant check of `TenantWarehouse`: each read of a tenant table carries its own filter."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.migrations import migrate
from segops.warehouse.row_policies import tenant_tables
from segops.warehouse.tenant_filter import TENANT_TABLES, unfiltered_tables

T = "{tenant_id:UInt64}"


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT count() FROM events WHERE tenant_id = {T}",
        f"SELECT count() FROM segops.`events` AS e PREWHERE e.tenant_id = {T} AND e.user_id = 'x'",
        f"SELECT user_id FROM events WHERE {T} = tenant_id AND (a = 1 OR b = 2)",
        f"SELECT * FROM events WHERE tenant_id = {T} AND user_id IN "
        f"(SELECT user_id FROM compute_candidates WHERE tenant_id = {T} AND compute_id = {{c:String}})",
        f"SELECT a FROM events WHERE tenant_id = {T} UNION ALL SELECT a FROM user_properties WHERE tenant_id = {T}",
        f"INSERT INTO compute_candidates (tenant_id, compute_id, user_id) SELECT DISTINCT {T}, 'c', user_id "
        f"FROM (SELECT user_id FROM events WHERE tenant_id = {T})",
        f"SELECT e.user_id FROM events AS e JOIN user_properties AS p ON p.tenant_id = {T} AND p.user_id = e.user_id "
        f"WHERE e.tenant_id = {T}",
        f"SELECT 'FROM events' AS text, {T} AS t FROM numbers(1)",
    ],
)
def test_scoped_statements_pass(sql: str) -> None:
    assert unfiltered_tables(sql) == ()


@pytest.mark.parametrize(
    ("sql", "unfiltered"),
    [
        # the old check accepted each of these: the placeholder appears somewhere
        (f"SELECT {T}, user_id FROM events", ("events",)),
        (f"SELECT tenant_id = {T} AS mine, user_id FROM events", ("events",)),
        (f"SELECT * FROM events WHERE tenant_id = {T} OR 1 = 1", ("events",)),
        (f"SELECT * FROM events WHERE user_id IN (SELECT user_id FROM events WHERE tenant_id = {T})", ("events",)),
        (f"SELECT a FROM events WHERE tenant_id = {T} UNION ALL SELECT a FROM events", ("events",)),
        (
            f"SELECT * FROM events WHERE tenant_id = {T} -- AND\n AND 1 = 1 UNION ALL SELECT * FROM user_properties",
            ("user_properties",),
        ),
        # a joined table needs its own qualified filter: the other side's does not scope it
        (
            f"SELECT * FROM events AS e JOIN user_properties AS p ON p.user_id = e.user_id WHERE e.tenant_id = {T}",
            ("user_properties",),
        ),
        (
            f"SELECT * FROM events e JOIN user_properties p ON p.user_id = e.user_id WHERE tenant_id = {T}",
            ("user_properties",),
        ),
        (f"SELECT * FROM events AS e WHERE x.tenant_id = {T}", ("events",)),
    ],
)
def test_reads_without_their_own_filter_are_named(sql: str, unfiltered: tuple[str, ...]) -> None:
    assert unfiltered_tables(sql) == unfiltered


def test_tenant_tables_are_exactly_the_tables_holding_tenant_rows(chdb_path: Path) -> None:
    warehouse = ChdbWarehouse(chdb_path, f"tf_{uuid.uuid4().hex[:12]}")
    migrate(warehouse)
    try:
        assert set(tenant_tables(warehouse)) == TENANT_TABLES
    finally:
        warehouse.command(f"DROP DATABASE IF EXISTS `{warehouse.database}`")
