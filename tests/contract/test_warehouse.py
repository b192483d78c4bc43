"""One contract for every `Warehouse`: chDB in-process, and clickhouse-connect over ClickHouse's HTTP
protocol (served by `tests/support/clickhouse_http.py`, executing on the same chDB engine)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from segops.warehouse import statistics
from segops.warehouse.base import TenantWarehouse, Warehouse
from segops.warehouse.chdb_backend import ChdbWarehouse
from segops.warehouse.clickhouse_backend import ClickHouseWarehouse
from segops.warehouse.migrations import available_migrations, migrate

from tests.support.backends import BACKENDS, fresh_database
from tests.support.clickhouse_http import ChdbHttpServer

EVENT_COLUMNS = [
    "tenant_id",
    "event_id",
    "message_id",
    "user_id",
    "event_type",
    "occurred_at",
    "received_at",
    "payload",
]

HOSTILE = [
    "'; DROP TABLE events; --",
    "' OR 1=1 --",
    "\\",
    "\\N",
    "back\\slash\\'quote",
    'double "quotes"',
    "tab\there\nnew line\r\n",
    "nul\x00byte",
    "{tenant_id:UInt64}",
    "`backtick`",
    "ünïcødé ✓ 😀",
    "",
]


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    """A fresh database per test on the requested backend."""
    with fresh_database(request, chdb_path) as built:
        yield built


def event_row(tenant_id: int, user_id: str, n: int, event_type: str = "page_viewed") -> list[Any]:
    occurred = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC) + timedelta(seconds=n)
    return [
        tenant_id,
        uuid.UUID(int=tenant_id << 64 | n),
        f"msg-{n}",
        user_id,
        event_type,
        occurred,
        occurred + timedelta(milliseconds=5),
        f'{{"n": {n}}}',
    ]


def test_migrations_apply_once_and_are_recorded(warehouse: Warehouse) -> None:
    # GIVEN a database the fixture already migrated
    expected = [name for _, name, _ in available_migrations()]
    recorded = warehouse.query("SELECT name FROM schema_migrations FINAL ORDER BY version").rows
    assert [r[0] for r in recorded] == expected
    # WHEN migrating again THEN nothing is applied and nothing is recorded twice
    assert migrate(warehouse) == []
    assert warehouse.query("SELECT count() FROM schema_migrations FINAL").scalar() == len(expected)
    tables = {r[0] for r in warehouse.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows}
    assert {"events", "user_properties", "user_properties_mv", "ingestion_errors", "schema_migrations"} <= tables


def test_query_result_shape(warehouse: Warehouse) -> None:
    result = warehouse.query("SELECT * FROM (SELECT toUInt64(1) AS a, 'x' AS b UNION ALL SELECT 2, 'y') ORDER BY a")
    assert result.columns == ["a", "b"]
    assert result.rows == [(1, "x"), (2, "y")]
    assert result.dicts() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert result.scalar() == 1
    assert warehouse.query("SELECT 1 AS a WHERE 0").scalar() is None


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_bind_as_values(warehouse: Warehouse, value: str) -> None:
    # WHEN a hostile string is bound as a parameter
    echoed = warehouse.query("SELECT {v:String} AS v, length({v:String}) AS n", {"v": value}).rows[0]
    # THEN it arrives byte for byte, as a value, never as SQL
    assert echoed == (value, len(value.encode()))


def test_hostile_strings_round_trip_through_insert_and_filter(warehouse: Warehouse) -> None:
    # GIVEN events whose user ids are hostile strings
    rows = [event_row(1, user, n) for n, user in enumerate(HOSTILE)]
    warehouse.insert("events", EVENT_COLUMNS, rows)
    # THEN each one is found by an equality filter on exactly its own value
    for user in HOSTILE:
        found = warehouse.query(
            "SELECT user_id FROM events WHERE tenant_id = {t:UInt64} AND user_id = {u:String}", {"t": 1, "u": user}
        )
        assert found.rows == [(user,)]
    assert warehouse.query("SELECT count() FROM events").scalar() == len(HOSTILE)


def test_array_tuple_null_and_datetime_parameters(warehouse: Warehouse) -> None:
    moment = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    row = warehouse.query(
        "SELECT {ids:Array(String)} AS ids, {maybe:Nullable(String)} AS maybe, {n:Array(Nullable(UInt8))} AS n, "
        "{at:DateTime64(3, 'UTC')} AS at, {sec:DateTime('UTC')} AS sec, {flag:Bool} AS flag, "
        "tupleElement({pair:Tuple(String, UInt8)}, 1) AS p1, tupleElement({pair:Tuple(String, UInt8)}, 2) AS p2",
        {
            "ids": ["a'b", "c\\d", "e\tf"],
            "maybe": None,
            "n": [1, None],
            "at": moment,
            "sec": moment.replace(microsecond=0),
            "flag": True,
            "pair": ("x'", 2),
        },
    ).dicts()[0]
    assert row["ids"] == ["a'b", "c\\d", "e\tf"]
    assert row["maybe"] is None
    assert row["n"] == [1, None]
    assert row["at"] == moment
    # DateTime (32-bit) is a datetime on both; only DateTime64(3, 'UTC') (the schema's type) is aware on both
    assert isinstance(row["sec"], datetime)
    assert row["sec"].replace(tzinfo=row["sec"].tzinfo or UTC) == moment.replace(microsecond=0)
    assert row["flag"] is True
    assert (row["p1"], row["p2"]) == ("x'", 2)


def test_composite_results_have_one_python_shape(warehouse: Warehouse) -> None:
    row = warehouse.query(
        "SELECT tuple('a', 1) AS t, CAST(('x', 2), 'Tuple(n String, v UInt8)') AS named, "
        "map('k', 1, 'j', 2) AS m, [tuple('a', 1)] AS tuples, [map('k', [1])] AS nested, "
        "CAST(NULL, 'Nullable(String)') AS missing"
    ).dicts()[0]
    assert row == {
        "t": ("a", 1),
        "named": {"n": "x", "v": 2},
        "m": {"k": 1, "j": 2},
        "tuples": [("a", 1)],
        "nested": [{"k": [1]}],
        "missing": None,
    }


def test_every_events_column_type_round_trips(warehouse: Warehouse) -> None:
    # GIVEN one event with every column type of `events`
    event_id = uuid.uuid4()
    occurred = datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
    received = datetime(2024, 3, 1, 0, 0, 0, 1000, tzinfo=UTC)
    payload = '{"total": 12.5, "items": ["a"], "nested": {"k": "v"}}'
    row = [2**63 + 5, event_id, "client-msg-1", "user ✓", "order_placed", occurred, received, payload]
    warehouse.insert("events", EVENT_COLUMNS, [row])
    # WHEN it is read back
    result = warehouse.query("SELECT * FROM events WHERE tenant_id = {t:UInt64}", {"t": 2**63 + 5}).dicts()
    # THEN each value has its Python type and exact value (DateTime64(3, 'UTC') → aware UTC, ms precision)
    assert result == [dict(zip(EVENT_COLUMNS, row, strict=True))]
    got = result[0]
    assert isinstance(got["event_id"], uuid.UUID)
    assert got["occurred_at"].utcoffset() == timedelta(0)


def test_naive_datetimes_are_utc(warehouse: Warehouse) -> None:
    naive = datetime(2024, 3, 1, 12, 0, 0, 500000)
    row = event_row(3, "u", 0)
    row[5] = naive
    warehouse.insert("events", EVENT_COLUMNS, [row])
    stored = warehouse.query("SELECT occurred_at FROM events WHERE tenant_id = {t:UInt64}", {"t": 3}).scalar()
    assert stored == naive.replace(tzinfo=UTC)
    matched = warehouse.query(
        "SELECT count() FROM events WHERE tenant_id = {t:UInt64} AND occurred_at = {at:DateTime64(3, 'UTC')}",
        {"t": 3, "at": naive},
    ).scalar()
    assert matched == 1


def test_large_insert_arrives_complete(warehouse: Warehouse) -> None:
    # GIVEN more rows than one insert block holds (clickhouse-connect splits and streams them)
    rows = [event_row(4, f"user-{n % 97}", n) for n in range(30_000)]
    rows[17][7] = "x" * 2000
    warehouse.insert("events", EVENT_COLUMNS, rows)
    # THEN every row is there once
    totals = warehouse.query(
        "SELECT count(), uniqExact(event_id), max(length(payload)) FROM events WHERE tenant_id = {t:UInt64}", {"t": 4}
    ).rows[0]
    assert totals == (30_000, 30_000, 2000)


def test_statements_report_what_they_read_to_the_active_measurement(warehouse: Warehouse) -> None:
    # GIVEN 5,000 stored events
    warehouse.insert("events", EVENT_COLUMNS, [event_row(12, f"user-{n % 50}", n) for n in range(5_000)])
    # WHEN a query and an INSERT ... SELECT run while measuring (as a compute's statements do)
    with statistics.measuring() as measured:
        users = warehouse.query("SELECT uniqExact(user_id) FROM events WHERE tenant_id = {t:UInt64}", {"t": 12})
        assert users.scalar() == 50
        warehouse.command(
            "INSERT INTO ingestion_errors (tenant_id, ts, error_type, detail, source) "
            "SELECT tenant_id, received_at, 'x', user_id, 'test' FROM events WHERE tenant_id = {t:UInt64}",
            {"t": 12},
        )
    # THEN both statements reported the rows and bytes the storage read, and their time
    assert measured.statements == 2
    assert measured.rows_read >= 10_000 and measured.bytes_read > 0 and measured.elapsed_us > 0
    # AND CPU time is known in process only (a server reports it in system.query_log alone)
    assert (measured.cpu_us > 0) == isinstance(warehouse, ChdbWarehouse)
    # AND nothing is collected outside a measurement
    warehouse.query("SELECT count() FROM events WHERE tenant_id = {t:UInt64}", {"t": 12})
    assert measured.statements == 2


def test_clickhouse_large_parameters_travel_as_form_fields(clickhouse_http: ChdbHttpServer) -> None:
    warehouse = ClickHouseWarehouse(clickhouse_http.url, "default", "", "default")
    ids = [f"user-{n}" for n in range(2000)]
    assert warehouse.query("SELECT length({ids:Array(String)})", {"ids": ids}).scalar() == 2000
    last = clickhouse_http.requests[-1]
    assert last["form"] and "param_ids" in last["params"]
    warehouse.close()


def test_clickhouse_refuses_a_request_over_its_field_limits(clickhouse_http: ChdbHttpServer) -> None:
    # A ClickHouse server (23.6 on) refuses any URL parameter or form field longer than
    # `http_max_field_value_size` (128 KiB by default), a request of more than `http_max_fields`
    # fields (1,000), and a URI over `http_max_uri_size` (1 MiB): a caller binding many values, or
    # many parameters, has to split them
    warehouse = ClickHouseWarehouse(clickhouse_http.url, "default", "", "default")
    assert warehouse.query("SELECT length({text:String})", {"text": "x" * 120_000}).scalar() == 120_000
    with pytest.raises(Exception, match="Field value too long"):
        warehouse.query("SELECT length({text:String})", {"text": "x" * 140_000})

    def total(n: int) -> int:
        sql = "SELECT arraySum([" + ", ".join(f"{{p{i}:UInt8}}" for i in range(n)) + "])"
        return int(warehouse.query(sql, {f"p{i}": 1 for i in range(n)}).scalar())

    assert total(900) == 900
    with pytest.raises(Exception, match="Too many form fields"):
        total(1_000)

    def lengths(n: int) -> int:
        # A query over 128 KiB cannot be a form field: clickhouse-connect sends its parameters in the URL
        sql = "SELECT " + " + ".join(f"length({{p{i}:String}})" for i in range(n)) + " -- " + "x" * 140_000
        return int(warehouse.query(sql, {f"p{i}": "y" * 100_000 for i in range(n)}).scalar())

    assert lengths(3) == 300_000  # a 300 KB URL: past http.server's 64 KiB, within ClickHouse's 1 MiB
    with pytest.raises(Exception, match="414"):
        lengths(11)
    warehouse.close()


def test_insert_settings_apply_to_the_insert(warehouse: Warehouse) -> None:
    # GIVEN a block inserted with a deduplication token (events keeps a deduplication window)
    warehouse.insert("events", EVENT_COLUMNS, [event_row(11, "u", 1)], settings={"insert_deduplication_token": "b-1"})
    # WHEN another block arrives under the same token, and one under a new token
    warehouse.insert("events", EVENT_COLUMNS, [event_row(11, "u", 2)], settings={"insert_deduplication_token": "b-1"})
    warehouse.insert("events", EVENT_COLUMNS, [event_row(11, "u", 3)], settings={"insert_deduplication_token": "b-2"})
    # THEN the repeated token was dropped as a retry of the first block
    ids = warehouse.query("SELECT message_id FROM events WHERE tenant_id = {t:UInt64} ORDER BY message_id", {"t": 11})
    assert ids.rows == [("msg-1",), ("msg-3",)]


def test_large_parameter_values(warehouse: Warehouse) -> None:
    # GIVEN a parameter far larger than a URL should carry (clickhouse-connect switches to a form body)
    ids = [f"user-{n}\t'{n}" for n in range(3000)]
    result = warehouse.query("SELECT length({ids:Array(String)}), {ids:Array(String)}[3000]", {"ids": ids}).rows
    assert result == [(3000, ids[-1])]


def test_user_properties_keep_latest_identify(warehouse: Warehouse) -> None:
    # GIVEN two identify events for one user, the later one arriving first
    late = event_row(5, "u1", 10, "context_identified")
    late[7] = '{"plan": "pro"}'
    early = event_row(5, "u1", 1, "context_identified")
    early[7] = '{"plan": "free"}'
    warehouse.insert("events", EVENT_COLUMNS, [late])
    warehouse.insert("events", EVENT_COLUMNS, [early])
    # THEN the materialized view keeps the payload of the latest occurred_at
    current = warehouse.query(
        "SELECT argMaxMerge(properties) FROM user_properties WHERE tenant_id = {t:UInt64} AND user_id = {u:String}",
        {"t": 5, "u": "u1"},
    ).scalar()
    assert current == '{"plan": "pro"}'


def test_export_csv_with_names(warehouse: Warehouse) -> None:
    warehouse.insert("events", EVENT_COLUMNS, [event_row(6, f'u{n},"q"', n) for n in range(3)])
    sink = io.BytesIO()
    written = warehouse.export(
        "SELECT user_id, event_type FROM events WHERE tenant_id = {t:UInt64} ORDER BY user_id",
        {"t": 6},
        "CSVWithNames",
        sink,
    )
    assert written == len(sink.getvalue())
    parsed = list(csv.reader(io.StringIO(sink.getvalue().decode())))
    assert parsed == [["user_id", "event_type"], *[[f'u{n},"q"', "page_viewed"] for n in range(3)]]


def test_export_parquet(warehouse: Warehouse) -> None:
    warehouse.insert("events", EVENT_COLUMNS, [event_row(7, f"u{n}", n) for n in range(1000)])
    sink = io.BytesIO()
    written = warehouse.export(
        "SELECT user_id, occurred_at FROM events WHERE tenant_id = {t:UInt64} ORDER BY occurred_at",
        {"t": 7},
        "Parquet",
        sink,
    )
    assert written == len(sink.getvalue()) > 0
    table = pq.read_table(io.BytesIO(sink.getvalue()))
    assert table.column_names == ["user_id", "occurred_at"]
    assert table.num_rows == 1000
    assert table.column("user_id").to_pylist()[:2] == ["u0", "u1"]


def test_statement_errors_raise(warehouse: Warehouse) -> None:
    with pytest.raises(Exception, match=r"(?i)unknown table|doesn't exist|does not exist"):
        warehouse.query("SELECT * FROM no_such_table")
    with pytest.raises(Exception, match=r"(?i)syntax"):
        warehouse.command("SELEC 1")


def test_a_statement_failing_mid_result_leaves_the_next_answer_its_own(warehouse: Warehouse) -> None:
    # A limit hit while rows are already streaming (memory, time, a throwIf) fails that statement
    # only: the next one gets its own rows, not the failed one's partial result.
    with pytest.raises(Exception, match=r"(?i)throwIf"):
        warehouse.query("SELECT throwIf(number = 300000) AS x FROM numbers(1000000)")
    assert warehouse.query("SELECT 42 AS answer").rows == [(42,)]


def test_check_passes(warehouse: Warehouse) -> None:
    warehouse.check()


def test_tenant_warehouse_binds_and_isolates(warehouse: Warehouse) -> None:
    # GIVEN events of two tenants
    warehouse.insert("events", EVENT_COLUMNS, [event_row(8, "a", 1), event_row(9, "b", 2), event_row(9, "c", 3)])
    scoped = TenantWarehouse(warehouse, 9)
    # THEN the scope binds its own tenant id
    count_sql = "SELECT count() FROM events WHERE tenant_id = {tenant_id:UInt64}"
    assert scoped.query(count_sql).scalar() == 2
    assert TenantWarehouse(warehouse, 8).query(count_sql).scalar() == 1
    # AND refuses SQL without the tenant filter, or a different tenant id
    with pytest.raises(ValueError, match="tenant_id"):
        scoped.query("SELECT count() FROM events")
    with pytest.raises(ValueError, match="tenant scope"):
        scoped.query(count_sql, {"tenant_id": 8})


def test_clickhouse_inserts_are_chunked_compressed_native(chdb_path: Path, clickhouse_http: ChdbHttpServer) -> None:
    """The protocol facts the test server exists for: what clickhouse-connect actually sends."""
    database = f"w_{uuid.uuid4().hex[:12]}"
    warehouse = ClickHouseWarehouse(clickhouse_http.url, "default", "", database)
    try:
        migrate(warehouse)
        before = len(clickhouse_http.requests)
        warehouse.insert("events", EVENT_COLUMNS, [event_row(10, "u", n) for n in range(10)])
        warehouse.query("SELECT count() FROM events WHERE tenant_id = {t:UInt64}", {"t": 10})
        sent = clickhouse_http.requests[before:]
        inserts = [r for r in sent if r["content_encoding"]]
        assert len(inserts) == 1  # the column types were looked up first, then one streamed insert
        insert, select = inserts[0], sent[-1]
        assert insert["chunked"] and insert["content_encoding"] in ("lz4", "zstd", "gzip")
        assert insert["params"]["database"] == database
        assert select["params"]["param_t"] == "10"
        assert select["params"]["database"] == database
        assert "query" not in select["params"]  # the statement travels in the body
        assert select["statement"].rstrip().endswith("FORMAT Native")  # answered in Native, rendered by chDB
        assert insert["statement"].startswith("INSERT INTO `events`") and "FORMAT Native" in insert["statement"]
    finally:
        warehouse.command(f"DROP DATABASE IF EXISTS `{database}`")
        warehouse.close()
