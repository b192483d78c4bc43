"""Every model that parses outside input refuses unknown fields, through the one strict base; how deep
outside JSON nests."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from segops.boundary import StrictModel, StrictTrimmedModel, deeper_than, json_depth
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
