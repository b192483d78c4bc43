"""The base of every model that parses input from outside the process: request bodies and queries,
bus messages, the manifest, connector settings. An unknown field is an error, never dropped
silently: a typo in an optional field must not turn into its default. And how deep outside JSON
may nest, and how a JSON body from outside is read (`loads`)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")


# How deep orjson reads: a body nesting deeper is valid JSON no reader of this process takes.
MAX_PARSED_DEPTH = 1024
TOO_DEEP = f"nested more than {MAX_PARSED_DEPTH:,} levels deep"


class BadJson(ValueError):
    """A body that is not JSON: `problem` ("not valid JSON", "not valid UTF-8", `TOO_DEEP`) at byte `position`."""

    def __init__(self, problem: str, position: int) -> None:
        super().__init__(f"body is {problem} (at byte {position})")
        self.problem = problem
        self.position = position


def loads(raw: bytes) -> Any:
    """A JSON body from outside: orjson's parse, taking two things real clients send that orjson refuses.

    - A leading UTF-8 byte order mark (.NET's and PowerShell's encoders write one), which RFC 8259
      lets a parser ignore: it is skipped.
    - A lone UTF-16 surrogate escape (`"\\ud83d"`), valid JSON grammar that no UTF-8 text can hold:
      JavaScript's `JSON.stringify` writes one for a string cut inside an emoji. The body is read
      with U+FFFD in its place, as Segment's own API (Go's `encoding/json`) reads it, so one
      truncated title does not cost the whole batch.

    Anything else orjson refuses is `BadJson`: nesting past `MAX_PARSED_DEPTH` (valid JSON, but not
    "not valid JSON"), invalid UTF-8 named as such at its first bad byte (orjson reports it at byte 0),
    otherwise invalid JSON at orjson's position."""
    skipped = len(_BOM) if raw.startswith(_BOM) else 0
    text = raw[skipped:] if skipped else raw
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise BadJson(TOO_DEEP, skipped + exc.pos) from None
        if "surrogate" in str(exc):
            repaired = _with_lone_surrogates(text)
            if repaired is not _REFUSED:
                return repaired
        try:
            text.decode()
        except UnicodeDecodeError as bad:
            raise BadJson("not valid UTF-8", skipped + bad.start) from None
        raise BadJson("not valid JSON", skipped + exc.pos) from None


_REFUSED = object()


def _with_lone_surrogates(text: bytes) -> Any:
    """`text` parsed by the standard library, which keeps lone surrogates, then each replaced by
    U+FFFD; `_REFUSED` for anything orjson would refuse besides them (NaN, Infinity, numbers past a
    double, invalid UTF-8, nesting past the interpreter's recursion). Numbers are read as orjson reads
    them: an integer beyond 64 bits as a double, which the rest of the edge can write."""
    try:
        parsed = json.loads(text.decode(), parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
        return _replaced(parsed)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _REFUSED


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


# The integers orjson reads as such; it reads any other as the nearest double (as JavaScript does).
_INTEGERS = range(-(2**63), 2**64)


def _integer(literal: str) -> int | float:
    value = int(literal)
    return value if value in _INTEGERS else _finite(literal)


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"{literal} is beyond a double")
    return value


def _replaced(value: Any) -> Any:
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, dict):
        return {_replaced(key): _replaced(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item) for item in value]
    return value


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


class PatchModel(StrictTrimmedModel):
    """A partial update: a field left out stays as it is, and none can be unset, so an explicit `null`
    is refused (`<field>: may not be null`) rather than read as "left out". Its fields are typed
    `X | None = None` only to be optional; the schema it publishes says `X`."""

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null", "may not be null")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        for prop in handler.resolve_ref_schema(schema).get("properties", {}).values():
            options = [option for option in prop.get("anyOf", ()) if option != {"type": "null"}]
            if len(options) == 1:
                del prop["anyOf"]
                prop.update(options[0])
            elif "anyOf" in prop:
                prop["anyOf"] = options
            if prop.get("default", 0) is None:
                del prop["default"]
        return schema
