"""Render bound values in ClickHouse's parameter text format (what `param_<name>` carries).

ClickHouse parses a parameter value in its *escaped* text format (as a TSV field), so a top-level
string must escape backslashes, tabs and newlines (else `a\\b` arrives as `a<backspace>` and a tab
ends the value); values inside arrays/tuples are SQL-quoted literals, and NULL there is `NULL`.
This matches what clickhouse-connect sends over HTTP, so both warehouse backends bind alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "'": "\\'"})


def _escape(value: str) -> str:
    return value.translate(_ESCAPED)


def _datetime(value: datetime) -> str:
    # Naive datetimes are UTC by convention. Whole seconds render without a fraction so that a
    # `DateTime` parameter accepts them; `DateTime64(n)` accepts both forms.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")


def _nested(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + _escape(value) + "'"
    if isinstance(value, (list, tuple)):
        inner = ",".join(_nested(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, (datetime, date, UUID)):
        return "'" + format_param(value) + "'"
    return format_param(value)


def format_param(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return _nested(value)
    raise TypeError(f"cannot bind {type(value).__name__}")


def format_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {name: format_param(value) for name, value in (params or {}).items()}


def array_item_bytes(value: str) -> int:
    """Bytes of `value` as an item of an `Array(String)` parameter: quoted, `\\`, `'`, the backtick
    (clickhouse-connect 1.12 escapes it too) and control characters escaped, then `, `
    (clickhouse-connect's separator)."""
    return len(value.encode()) + sum(ch in "\\'`" or ch < " " for ch in value) + 4


def string_parts(value: str, max_bytes: int) -> list[str]:
    """`value` cut into consecutive parts, each at most `max_bytes` as a bound parameter (counted as an
    `Array(String)` item, which bounds its top-level form too); `"".join` of them is `value`."""
    parts: list[str] = []
    start = 0
    while start < len(value):
        # A character is at least one byte: never more characters than bytes, then shrink in proportion.
        end = min(len(value), start + max_bytes)
        while (cost := array_item_bytes(value[start:end])) > max_bytes:
            end = start + max(1, (end - start) * max_bytes // cost - 8)
        parts.append(value[start:end])
        start = end
    return parts


def array_parts(values: Iterable[str], max_bytes: int, max_count: int | None = None) -> Iterator[list[str]]:
    """`values` in order, in consecutive parts of at most `max_count` values, each at most `max_bytes`
    as an `Array(String)` parameter (`array_item_bytes`; a single longer value is a part of its own).
    A ClickHouse server refuses a request field, i.e. a bound parameter, over 128 KiB."""
    part: list[str] = []
    size = 0
    for value in values:
        cost = array_item_bytes(value)
        if part and (len(part) == max_count or size + cost > max_bytes):
            yield part
            part, size = [], 0
        part.append(value)
        size += cost
    if part:
        yield part
