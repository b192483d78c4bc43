"""Every model that parses outside input refuses unknown fields, through the one strict base."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from segops.boundary import StrictModel, StrictTrimmedModel
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
