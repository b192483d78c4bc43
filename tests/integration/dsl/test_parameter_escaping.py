"""Regression: string parameters with backslashes, tabs or newlines round-trip exactly through chDB."""

from __future__ import annotations

import pytest
from segops.warehouse import Warehouse


@pytest.mark.parametrize("text", ["a\\b", "a\tb", "a\nb", "it's", "\\N", "\r\x00z", "", "x\\tq"])
def test_string_parameters_round_trip(warehouse: Warehouse, text: str) -> None:
    result = warehouse.query("SELECT {p:String} AS p, {a:Array(String)} AS a", {"p": text, "a": [text]})
    assert result.rows == [(text, [text])]
