"""An `in` list too long for one request field of a ClickHouse server (128 KiB) is bound in parts
the server accepts, and still matches exactly its values, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.binding import format_bind_value
from segops.dsl import CompiledQuery, compile_segment, parse_definition
from segops.warehouse import TenantWarehouse
from segops.warehouse.base import Warehouse

from tests.integration.dsl.strategies import NOW
from tests.support.backends import BACKENDS, fresh_database
from tests.support.clickhouse_http import HTTP_MAX_FIELD_VALUE_SIZE
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[Warehouse]:
    with fresh_database(request, chdb_path) as built:
        yield built


def test_an_in_list_longer_than_a_request_field_matches_exactly_its_values(warehouse: Warehouse) -> None:
    # GIVEN a segment on 1,000 page URLs of ~220 characters, quotes and backslashes in them (~230 KB
    # as one parameter)
    urls = [f"https://shop.example.com/products/{n:04d}/" + "it's-a-long\\path-" * 11 for n in range(1000)]
    compiled, parts = _compiled_in(urls)
    assert [u for part in parts for u in part] == urls and len(parts) > 1
    assert sum(len(u.encode()) for u in urls) > HTTP_MAX_FIELD_VALUE_SIZE
    # AND users who viewed the first, a middle and the last of them, and users who viewed neither
    tenant = fresh_tenant()
    views = {"first": urls[0], "middle": urls[500], "last": urls[-1], "prefix": urls[0][:-1], "other": "/cart"}
    insert_events(warehouse, tenant, [Event(u, "page_viewed", NOW, NOW, {"url": url}) for u, url in views.items()])
    # WHEN the segment is evaluated
    rows = TenantWarehouse(warehouse, tenant).query(compiled.sql, compiled.bind(NOW)).rows
    # THEN its members are exactly the users who viewed a listed URL
    assert {str(user) for user, *_ in rows} == {"first", "middle", "last"}


def _compiled_in(values: list[str]) -> tuple[CompiledQuery, list[list[str]]]:
    """A segment on page views whose `url` is one of `values`; its compiled query and the parts of the list."""
    where = [{"property": "url", "operator": "in", "value": values}]
    condition = {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1, "where": where}
    compiled = compile_segment(parse_definition({"logic": "AND", "conditions": [condition]}))
    parts = [value for value in compiled.params.values() if isinstance(value, list) and value[0] in values]
    return compiled, parts


def test_each_part_of_a_long_list_fits_in_a_request_field() -> None:
    # GIVEN 1,000 values full of characters the parameter escapes, and multi-byte ones
    urls = [f"/p/{n}/" + "a'\\\t\n" * 60 + "\u00fc" * 50 for n in range(1000)]
    _, parts = _compiled_in(urls)
    # THEN the parts are the list, each under 100,000 bytes as clickhouse-connect writes the parameter
    assert [u for part in parts for u in part] == urls
    assert max(len(format_bind_value(part).encode()) for part in parts) <= 100_000 + 2


@pytest.mark.parametrize("operator", ["eq", "contains", "in"])
def test_one_value_longer_than_a_request_field_matches_exactly(warehouse: Warehouse, operator: str) -> None:
    # GIVEN a segment on one ~300 KB string (quotes, backslashes, tabs and multi-byte characters in it)
    long = "it's-a\\long\t\u00fcpath/" * 15_000
    value: str | list[str] = [long, "/short"] if operator == "in" else long
    where = [{"property": "note", "operator": operator, "value": value}]
    condition = {"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1, "where": where}
    compiled = compile_segment(parse_definition({"logic": "AND", "conditions": [condition]}))
    # THEN no parameter is longer than a server's request field, and the parts are the value
    strings = [v for v in compiled.params.values() if isinstance(v, str) and v not in ("note", "page_viewed")]
    assert len(strings) > 1 and "".join(strings) == long
    assert max(len(format_bind_value(v).encode()) for v in compiled.params.values()) <= 100_000 + 2
    # AND users whose note is the value, the value inside a longer text, a prefix of it, or another text
    tenant = fresh_tenant()
    notes = {"exact": long, "inside": f"<{long}>", "prefix": long[:-1], "other": "/short"}
    insert_events(warehouse, tenant, [Event(u, "page_viewed", NOW, NOW, {"note": n}) for u, n in notes.items()])
    # WHEN the segment is evaluated
    rows = TenantWarehouse(warehouse, tenant).query(compiled.sql, compiled.bind(NOW)).rows
    # THEN it matches exactly the users the operator names
    expected = {"eq": {"exact"}, "contains": {"exact", "inside"}, "in": {"exact", "other"}}[operator]
    assert {str(user) for user, *_ in rows} == expected
