"""`segops.warehouse.identifiers`: the allow-list every SQL name passes, in the compiler and the backends."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from segops.warehouse.base import render_settings
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse
from segops.warehouse.identifiers import allowed_identifier, quote_identifier, quote_identifiers, segment_column

PACKAGE = Path(quote_identifier.__code__.co_filename).resolve().parents[1]  # shared/segops

HOSTILE: list[Any] = [
    "",
    "1events",
    "events-2",
    "user id",
    "a.b",
    "`events`",
    "events`; DROP TABLE events; --",
    "events\n",
    "events\x00",
    "events/*",
    "événements",
    "\uff45vents",  # fullwidth letter e
    "a" * 64,
    None,
    7,
]


@pytest.mark.parametrize("name", ["events", "_x", "s_12", "Tenant_ID", "a" * 63])
def test_allowed_names_are_backquoted(name: str) -> None:
    assert allowed_identifier(name) == name
    assert quote_identifier(name) == f"`{name}`"


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_names_are_refused(name: Any) -> None:
    with pytest.raises(ValueError, match="not an allowed SQL identifier"):
        quote_identifier(name)
    with pytest.raises(ValueError, match="not an allowed SQL identifier"):
        allowed_identifier(name)


def test_column_lists_refuse_any_hostile_member() -> None:
    assert quote_identifiers(["tenant_id", "user_id"]) == "`tenant_id`, `user_id`"
    with pytest.raises(ValueError, match="not an allowed"):
        quote_identifiers(["tenant_id", "user_id) SELECT 1 --"])


@pytest.mark.parametrize("segment_id", [-1, True, 1.5, "7"])
def test_segment_columns_come_from_ids_only(segment_id: Any) -> None:
    assert segment_column(7) == "s_7"
    with pytest.raises(ValueError, match="non-negative integer"):
        segment_column(segment_id)


def test_insert_settings_names_pass_the_allow_list_and_values_their_own() -> None:
    assert render_settings({"insert_deduplication_token": "ev-a-2-0f", "async_insert": 1}) == (
        "insert_deduplication_token='ev-a-2-0f', async_insert='1'"
    )
    for name, value in (("max_threads\n", "1"), ("x=1, readonly", "1"), ("token", "a'b"), ("token", "a\n")):
        with pytest.raises(ValueError, match=r"not an allowed|unsafe setting"):
            render_settings({name: value})


def test_chdb_backend_names_pass_the_allow_list(chdb_path: Path) -> None:
    # GIVEN the embedded backend
    with pytest.raises(ValueError, match="not an allowed"):
        ChdbWarehouse(chdb_path, "segops`; DROP DATABASE default; --")
    warehouse = ChdbWarehouse(chdb_path, f"t_{uuid.uuid4().hex[:12]}")
    warehouse.command("CREATE TABLE names (id UInt64, label String) ENGINE = MergeTree ORDER BY id")
    # WHEN a hostile table, column or format name reaches it THEN nothing runs
    for table, columns in (("names` (id) VALUES (1); --", ["id"]), ("names", ["id", "label`) --"])):
        with pytest.raises(ValueError, match="not an allowed"):
            warehouse.insert(table, columns, [(1, "x")] if len(columns) == 2 else [(1,)])
    with pytest.raises(ValueError, match="not an allowed"):
        warehouse.export("SELECT 1", {}, "CSV) SELECT 2 --", open("/dev/null", "wb"))  # noqa: SIM115
    assert warehouse.query("SELECT count() FROM names").scalar() == 0
    # AND allowed names work
    warehouse.insert("names", ["id", "label"], [(1, "x")])
    assert warehouse.query("SELECT id, label FROM names").rows == [(1, "x")]


def test_server_backend_refuses_a_hostile_database_before_connecting() -> None:
    with pytest.raises(ValueError, match="not an allowed"):
        ClickHouseWarehouse("http://127.0.0.1:9", "default", "", "segops`; DROP DATABASE default; --")


def test_no_module_quotes_sql_names_by_hand() -> None:
    # SQL in an f-string that backquotes an interpolation: a name quoted outside the allow-list.
    by_hand = re.compile(r"""\bf["'][^"']*\b(?:USE|INTO|FROM|TABLE|DATABASE|SELECT|JOIN|AS|BY)\b[^"']*`\{""")
    identifiers = Path(quote_identifier.__code__.co_filename).resolve()
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.resolve() != identifiers
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if by_hand.search(line)
    ]
    assert offenders == []
