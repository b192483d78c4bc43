"""The base of every model that parses input from outside the process: request bodies and queries,
bus messages, the manifest, connector settings. An unknown field is an error, never dropped
silently: a typo in an optional field must not turn into its default. And how deep outside JSON
may nest."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict


def json_problem(raw: bytes, exc: orjson.JSONDecodeError) -> tuple[str, int]:
    """What is wrong with a body orjson refused, and where: invalid UTF-8 is named as such at its
    first bad byte (orjson reports it at position 0), anything else is invalid JSON at orjson's
    position."""
    try:
        raw.decode()
    except UnicodeDecodeError as bad:
        return "not valid UTF-8", bad.start
    return "not valid JSON", exc.pos


def json_depth(value: Any) -> int:
    """Levels of objects and arrays in a parsed JSON value: a scalar is 0, `{}` and `[1]` are 1,
    `{"a": {"b": 1}}` is 2. Iterative (a level at a time), so any depth the parser took is measured."""
    depth = 0
    level = [value]
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def deeper_than(value: Any, text: bytes, limit: int) -> bool:
    """Whether `value`, parsed from (or written as) the JSON `text`, nests more than `limit` levels.
    Each level opens and closes a bracket: text of at most `2 * limit` bytes, or with at most `limit`
    opening brackets, is not walked at all (a length costs nothing; counting, ~2 ns a byte here)."""
    return len(text) > 2 * limit and text.count(b"{") + text.count(b"[") > limit and json_depth(value) > limit


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrictTrimmedModel(StrictModel):
    """Values a person types (names, emails, slugs, settings): surrounding whitespace is not part of them.

    Identifiers that must match byte for byte what was ingested (user ids, event types) stay on
    `StrictModel`."""

    model_config = ConfigDict(str_strip_whitespace=True)
