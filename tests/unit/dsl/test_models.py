"""Validation: every invalid definition is a ValidationFailed pointing at the field to fix."""

from __future__ import annotations

from typing import Any

import pytest
from segops.dsl import MAX_CONDITIONS, MAX_DEPTH, Group, is_time_dependent, parse_definition
from segops.errors import ValidationFailed

COUNT = {"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}


def pointers(obj: Any, prefix: tuple[str | int, ...] = ()) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_definition(obj, prefix)
    return [e["pointer"] for e in caught.value.details["errors"]]


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "AND", "conditions": [condition]}


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        (one({"type": "nope"}), "/conditions/0/type"),
        (one({"event_type": "a"}), "/conditions/0/type"),
        (one({**COUNT, "value": -1}), "/conditions/0/value"),
        (one({**COUNT, "value": "1"}), "/conditions/0/value"),
        (one({**COUNT, "value": True}), "/conditions/0/value"),
        (one({**COUNT, "operator": "contains"}), "/conditions/0/operator"),
        (one({**COUNT, "event_type": "Bad Type"}), "/conditions/0/event_type"),
        (one({**COUNT, "window_days": 0}), "/conditions/0/window_days"),
        (one({**COUNT, "surprise": 1}), "/conditions/0/surprise"),
        (one({k: v for k, v in COUNT.items() if k != "operator"}), "/conditions/0/operator"),
        (one({"type": "recency", "event_type": "a", "operator": "eq", "window_days": 3}), "/conditions/0/operator"),
        (one({"type": "recency", "event_type": "a", "operator": "gt"}), "/conditions/0/window_days"),
        (
            one(
                {
                    "type": "monetary",
                    "event_type": "a",
                    "property": "t",
                    "metric": "median",
                    "operator": "gt",
                    "value": 1,
                }
            ),
            "/conditions/0/metric",
        ),
        (
            one(
                {
                    "type": "monetary",
                    "event_type": "a",
                    "property": "t",
                    "metric": "sum",
                    "operator": "gt",
                    "value": "1",
                }
            ),
            "/conditions/0/value",
        ),
        (one({"type": "user_property", "property": "p", "operator": "contains", "value": 3}), "/conditions/0/value"),
        (one({"type": "user_property", "property": "p", "operator": "in", "value": "x"}), "/conditions/0/value"),
        (one({"type": "user_property", "property": "p", "operator": "gte", "value": False}), "/conditions/0/value"),
        (one({"type": "user_property", "property": "p", "operator": "eq"}), "/conditions/0/value"),
        (one({"type": "user_property", "property": "p", "operator": "exists", "value": 1}), "/conditions/0/value"),
        (one({"type": "user_property", "property": "a..b", "operator": "exists"}), "/conditions/0/property"),
        (one({**COUNT, "where": [{"property": "x", "operator": "lt", "value": [1]}]}), "/conditions/0/where/0/value"),
        ({"logic": "XOR", "conditions": [COUNT]}, "/logic"),
        ({"logic": "AND", "conditions": []}, "/conditions"),
        (
            {"logic": "AND", "conditions": [{"logic": "OR", "conditions": [{**COUNT, "value": None}]}]},
            "/conditions/0/conditions/0/value",
        ),
        ({"conditions": [COUNT]}, "/logic"),
    ],
)
def test_invalid_definitions_point_at_the_field(definition: dict[str, Any], pointer: str) -> None:
    assert pointer in pointers(definition)


def test_prefix_is_prepended() -> None:
    assert pointers(one({**COUNT, "value": -1}), ("definition",)) == ["/definition/conditions/0/value"]


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = COUNT
    for _ in range(depth):
        node = {"logic": "AND", "conditions": [node]}
    return node


def test_depth_limit() -> None:
    assert isinstance(parse_definition(nested(MAX_DEPTH)), Group)
    path = "/conditions/0" * MAX_DEPTH
    assert pointers(nested(MAX_DEPTH + 1)) == [path]


def test_condition_count_limit() -> None:
    assert parse_definition({"logic": "OR", "conditions": [COUNT] * MAX_CONDITIONS})
    assert pointers({"logic": "OR", "conditions": [COUNT] * (MAX_CONDITIONS + 1)}) == [f"/conditions/{MAX_CONDITIONS}"]


def test_time_dependence() -> None:
    assert not is_time_dependent(parse_definition(one(COUNT)))
    assert is_time_dependent(parse_definition(one({**COUNT, "window_days": 1.5})))
    assert is_time_dependent(
        parse_definition(
            {
                "logic": "OR",
                "conditions": [COUNT, one({"type": "recency", "event_type": "a", "operator": "lt", "window_days": 1})],
            }
        )
    )


SPENT_SUM = {"type": "monetary", "event_type": "a", "property": "t", "metric": "sum", "operator": "gte"}


@pytest.mark.parametrize(
    ("condition", "pointer"),
    [
        ({"type": "event_count", "event_type": "a", "operator": "gte", "value": 1, "window_days": "7"}, "window_days"),
        ({"type": "recency", "event_type": "a", "operator": "gt", "window_days": True}, "window_days"),
        ({**SPENT_SUM, "value": "9"}, "value"),
    ],
)
def test_a_number_field_given_something_else_says_it_takes_a_json_number(
    condition: dict[str, Any], pointer: str
) -> None:
    # (pydantic's union named only its first branch: "Input should be a valid integer", for a field
    # that takes 0.5 as well)
    with pytest.raises(ValidationFailed) as refused:
        parse_definition({"logic": "AND", "conditions": [condition]})
    assert refused.value.details["errors"] == [
        {"pointer": f"/conditions/0/{pointer}", "message": "must be a JSON number", "type": "number_type"}
    ]
