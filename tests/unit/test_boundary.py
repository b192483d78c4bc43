"""Every model that parses outside input refuses unknown fields, through the one strict base; how deep
outside JSON nests."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from segops.boundary import BadJson, StrictModel, StrictTrimmedModel, deeper_than, json_depth, loads
from segops.catalog import HTTP_FUNCTIONS, routers


class Named(StrictTrimmedModel):
    name: str


class Identified(StrictModel):
    user_id: str


def test_unknown_fields_are_errors_not_dropped() -> None:
    for model, data in ((Named, {"name": "a"}), (Identified, {"user_id": "u"})):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({**data, "nmae": "typo"})
        assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"]


def test_only_typed_values_lose_surrounding_whitespace() -> None:
    assert Named(name="  Weekly buyers \n").name == "Weekly buyers"
    assert Identified(user_id=" u-1 ").user_id == " u-1 "  # must match what ingestion stored


def test_every_request_body_and_query_model_is_strict() -> None:
    # GIVEN every route of every HTTP function
    loose: list[str] = []
    for function in HTTP_FUNCTIONS:
        for router in routers(function):
            for route in router.routes:
                for model in (route.body, route.query, route.doc_body):
                    # THEN what it parses from the request rests on the strict base
                    if model is not None and not issubclass(model, StrictModel):
                        loose.append(f"{route.method} {route.path}: {model.__name__}")
    assert loose == []


def test_a_plain_model_would_be_caught() -> None:
    class Loose(BaseModel):
        name: str

    assert not issubclass(Loose, StrictModel)


def _nested(levels: int) -> object:
    value: object = 1
    for level in range(levels):
        value = {"a": value} if level % 2 else [value, "x"]
    return value


def _reference_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_reference_depth, value), default=0)
    return 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet="{[]}a", max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


@given(JSON, st.integers(min_value=0, max_value=8))
def test_depth_counts_levels_of_objects_and_arrays(value: object, limit: int) -> None:
    # Strings full of brackets only make the text look deeper: the walk decides
    assert json_depth(value) == _reference_depth(value)
    assert deeper_than(value, orjson.dumps(value), limit) == (_reference_depth(value) > limit)


def test_depth_of_scalars_empty_and_deep_values() -> None:
    assert [json_depth(v) for v in (1, "a", None, {}, [], {"a": []}, [[{}]])] == [0, 0, 0, 1, 1, 2, 3]
    # Deeper than any recursive walk could go, as deep as orjson parses (1,024 levels)
    assert json_depth(_nested(1000)) == 1000
    assert json_depth(orjson.loads("[" * 1024 + "]" * 1024)) == 1024


def _usv(text: str) -> str:
    """Reference: `text` as JSON text spells it once parsed, a high surrogate before a low one being
    one character (how `\\ud83d\\ude00` reads), and any other surrogate U+FFFD."""
    out, i = [], 0
    while i < len(text):
        code = ord(text[i])
        following = ord(text[i + 1]) if i + 1 < len(text) else 0
        if 0xD800 <= code <= 0xDBFF and 0xDC00 <= following <= 0xDFFF:
            out.append(chr(0x10000 + ((code - 0xD800) << 10) + (following - 0xDC00)))
            i += 2
            continue
        out.append("\ufffd" if 0xD800 <= code <= 0xDFFF else text[i])
        i += 1
    return "".join(out)


def _usv_value(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)  # as orjson reads an integer beyond 64 bits
    if isinstance(value, str):
        return _usv(value)
    if isinstance(value, dict):
        return {_usv(k): _usv_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_usv_value(v) for v in value]
    return value


TEXT = st.text(
    alphabet=st.sampled_from(["a", "é", "😀", "\ud83d", "\ude00", "\ud800", "\udfff", '"', "\\"]), max_size=6
)
WITH_SURROGATES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([-(2**63) - 1, 2**64 - 1, 2**64]) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=20,
)


@given(WITH_SURROGATES)
def test_lone_surrogate_escapes_read_as_replacement_characters(value: object) -> None:
    # GIVEN any JSON text, strings holding lone surrogates as JavaScript's JSON.stringify escapes them
    text = json.dumps(value).encode()
    # THEN it reads as the same value with each lone surrogate U+FFFD (pairs stay one character), and
    # its numbers as orjson reads them (an integer beyond 64 bits as a double, which the edge can write)
    assert loads(text) == _usv_value(value)
    # AND what orjson reads on its own is read exactly as orjson reads it
    try:
        expected = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    assert loads(text) == expected


def test_a_byte_order_mark_is_skipped_and_positions_still_count_it() -> None:
    assert loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    with pytest.raises(BadJson) as caught:
        loads(b'\xef\xbb\xbf{"a": x}')
    assert (caught.value.problem, caught.value.position) == ("not valid JSON", 9)
    with pytest.raises(BadJson):
        loads(b"\xef\xbb\xbf\xef\xbb\xbf{}")  # one mark is a mark; a second is not JSON


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"a": "\\ud800", "b": NaN}', "not valid JSON"),
        (b'{"a": "\\ud800", "b": -Infinity}', "not valid JSON"),
        (b'{"a": "\\ud800", "b": 1e400}', "not valid JSON"),
        (b'{"a": "\\ud800", "b": "\xff"}', "not valid UTF-8"),
        (b'{"a": "\\ud800"', "not valid JSON"),
        (b'{"a": "\\ud800"} {}', "not valid JSON"),
    ],
)
def test_a_lone_surrogate_does_not_let_anything_else_through(raw: bytes, problem: str) -> None:
    # What orjson refuses besides the surrogate is refused as before
    with pytest.raises(BadJson) as caught:
        loads(raw)
    assert caught.value.problem == problem
