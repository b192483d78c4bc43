"""Render bound values in ClickHouse's parameter text format (what `param_<name>` carries)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _escape(value: str) -> str:
    """Parameter values are parsed with escape sequences: a backslash, tab or newline must be escaped."""
    return value.translate(_ESCAPES)


def _quote(value: str) -> str:
    return "'" + _escape(value).replace("'", "\\'") + "'"


def _nested(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_nested(v) for v in value) + "]"
    if isinstance(value, (datetime, date, UUID)):
        return _quote(format_param(value))
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
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return str(value.isoformat(sep=" ", timespec="milliseconds"))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_nested(v) for v in value) + "]"
    raise TypeError(f"cannot bind {type(value).__name__}")


def format_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {name: format_param(value) for name, value in (params or {}).items()}
