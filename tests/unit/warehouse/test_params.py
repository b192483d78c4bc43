"""Cutting bound values to a ClickHouse server's request-field limit (`segops.warehouse.params`)."""

from __future__ import annotations

from clickhouse_connect.driver.binding import format_bind_value
from hypothesis import given
from hypothesis import strategies as st
from segops.warehouse.params import string_parts


@given(st.text(max_size=3_000), st.integers(min_value=16, max_value=400))
def test_string_parts_are_the_value_each_within_the_bound(value: str, max_bytes: int) -> None:
    parts = string_parts(value, max_bytes)
    assert "".join(parts) == value
    assert all(parts)
    # as clickhouse-connect writes a top-level String parameter, and as an array item
    assert all(len(format_bind_value(part).encode()) <= max_bytes for part in parts)
    assert all(len(format_bind_value([part]).encode()) <= max_bytes for part in parts)


def test_a_long_string_is_cut_into_few_full_parts() -> None:
    value = "a'\\\t\u00fc-" * 100_000  # 600,000 characters, 1,000,000 bytes once escaped
    parts = string_parts(value, 100_000)
    assert "".join(parts) == value
    assert 10 <= len(parts) <= 12
