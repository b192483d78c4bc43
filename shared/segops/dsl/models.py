"""The segment DSL as data (docs/design.md §5): one pydantic model per condition type, groups nested.

`parse_definition` is the only way in: it validates once and reports every problem with a JSON
pointer to the offending field (`/conditions/0/value`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from segops.boundary import StrictModel
from segops.errors import ValidationFailed, invalid
from segops.event_type import EventType
from segops.http.pointers import json_pointer

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_LIST_VALUES = 1000

ComparisonOperator = Literal["eq", "neq", "gt", "gte", "lt", "lte"]
RecencyOperator = Literal["gt", "gte", "lt", "lte"]
PropertyOperator = Literal["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists", "not_exists"]
Metric = Literal["sum", "avg", "min", "max", "count"]
Logic = Literal["AND", "OR"]

# JSON numbers as IEEE doubles: finite floats, integers within the range ClickHouse compares exactly enough.
StrictNumberInt = Annotated[int, Field(strict=True, ge=-(2**63), le=2**64 - 1)]
StrictNumberFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _json_number(value: Any) -> Any:
    # One message for the union (pydantic would name only its first branch: "a valid integer").
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number_type", "must be a JSON number")
    return value


Number = Annotated[StrictNumberInt | StrictNumberFloat, BeforeValidator(_json_number)]
Scalar = StrictStr | StrictBool | StrictNumberInt | StrictNumberFloat
# Dotted path into a JSON object: non-empty keys separated by dots. Keys are bound as parameters.
PropertyPath = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^.]+(\.[^.]+)*$")]
WindowDays = Annotated[Number, Field(gt=0, le=36500)]
ORDERING = ("gt", "gte", "lt", "lte")


class _Node(StrictModel):
    model_config = ConfigDict(frozen=True)


class PropertyFilter(_Node):
    """`{property, operator, value}` on a JSON object (event payload or user properties)."""

    property: PropertyPath
    operator: PropertyOperator
    value: Scalar | list[Scalar] | None = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        operator = info.data.get("operator")
        if operator is None:
            return value
        if operator in ("exists", "not_exists"):
            if value is not None:
                raise ValueError(f"{operator} takes no value")
        elif operator in ("in", "not_in"):
            if not isinstance(value, list):
                raise ValueError(f"{operator} needs a list of values")
            if len(value) > MAX_LIST_VALUES:
                raise ValueError(f"at most {MAX_LIST_VALUES} values")
        elif isinstance(value, list) or value is None:
            raise ValueError(f"{operator} needs a single string, number or boolean")
        elif operator == "contains" and not isinstance(value, str):
            raise ValueError("contains needs a string")
        elif operator in ORDERING and isinstance(value, bool):
            raise ValueError("booleans compare by equality only (eq, neq, in, not_in)")
        return value


class EventCount(_Node):
    type: Literal["event_count"]
    event_type: EventType
    operator: ComparisonOperator
    # A count is a UInt64 in the warehouse (`count()`, `sum(events)`): compared as one, so every value
    # accepted here means what the sandbox's Python ints mean.
    value: Annotated[StrictInt, Field(ge=0, le=2**64 - 1)]
    window_days: WindowDays | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)


class Monetary(_Node):
    type: Literal["monetary"]
    event_type: EventType
    property: PropertyPath
    metric: Metric
    operator: ComparisonOperator
    value: Number
    window_days: WindowDays | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)


class Recency(_Node):
    type: Literal["recency"]
    event_type: EventType
    operator: RecencyOperator
    window_days: WindowDays


class UserProperty(PropertyFilter):
    type: Literal["user_property"]


def _node_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        return "group" if kind is None and "logic" in value else kind if isinstance(kind, str) else None
    if isinstance(value, BaseModel):
        return getattr(value, "type", "group")
    return None


Condition = EventCount | Monetary | Recency | UserProperty
_CONDITION_TAGS = ("event_count", "monetary", "recency", "user_property")

Node = Annotated[
    Annotated[EventCount, Tag("event_count")]
    | Annotated[Monetary, Tag("monetary")]
    | Annotated[Recency, Tag("recency")]
    | Annotated[UserProperty, Tag("user_property")]
    | Annotated["Group", Tag("group")],
    Discriminator(
        _node_tag,
        custom_error_type="invalid_condition",
        custom_error_message="unknown condition: 'type' must be one of "
        + ", ".join(_CONDITION_TAGS)
        + ", or a group with 'logic' and 'conditions'",
    ),
]


class Group(_Node):
    logic: Logic
    conditions: list[Node] = Field(min_length=1)


class SegmentDefinition(Group):
    """The root group of a segment."""


_FIELDS = frozenset(
    name for model in (EventCount, Monetary, Recency, UserProperty, Group) for name in model.model_fields
)


def _walk_limits(group: Group, path: tuple[str | int, ...], depth: int, counted: list[int]) -> None:
    if depth > MAX_DEPTH:
        raise _limit_error(path, f"groups nest at most {MAX_DEPTH} deep")
    for index, node in enumerate(group.conditions):
        here = (*path, "conditions", index)
        if isinstance(node, Group):
            _walk_limits(node, here, depth + 1, counted)
        else:
            counted[0] += 1
            if counted[0] > MAX_CONDITIONS:
                raise _limit_error(here, f"at most {MAX_CONDITIONS} conditions in total")


def _limit_error(path: tuple[str | int, ...], message: str) -> ValidationFailed:
    pointer = json_pointer(path)
    return invalid(pointer, message)


def parse_definition(obj: Any, prefix: tuple[str | int, ...] = ()) -> SegmentDefinition:
    """Validate a DSL document; `ValidationFailed` details list `{pointer, message}` per problem.

    `prefix` is prepended to every pointer (e.g. `("definition",)` when the DSL is a request field).
    """
    try:
        definition = SegmentDefinition.model_validate(obj)
    except ValidationError as exc:
        raise _pointed(exc, obj, prefix) from None
    _walk_limits(definition, prefix, 1, [0])
    return definition


def _pointed(exc: ValidationError, obj: Any, prefix: tuple[str | int, ...]) -> ValidationFailed:
    errors: list[dict[str, str]] = []
    for raw in exc.errors(include_url=False, include_input=False):
        path = _input_path(obj, raw["loc"])
        if raw["type"] == "invalid_condition":
            path.append("type")  # an unknown or absent `type` is what needs fixing
        pointer = json_pointer((*prefix, *path))
        if all(e["pointer"] != pointer for e in errors):
            errors.append({"pointer": pointer, "message": raw["msg"], "type": raw["type"]})
    first = errors[0]
    return ValidationFailed(f"{first['pointer'] or 'definition'}: {first['message']}", {"errors": errors})


_ABSENT = object()


def _child(node: Any, part: int | str) -> Any:
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _input_path(obj: Any, loc: tuple[int | str, ...]) -> list[int | str]:
    """The part of pydantic's error location that exists in the input document.

    Union members and tags add names (`event_count`, `constrained-int`) that are not in the
    document; only keys and indexes that navigate it are kept, plus an absent DSL field.
    """
    path: list[int | str] = []
    node = obj
    for part in loc:
        child = _child(node, part)
        if child is not _ABSENT:
            node = child
        elif isinstance(node, dict) and part in _FIELDS:
            node = None  # an absent field: the pointer ends here
        else:
            continue
        path.append(part)
    return path


def is_time_dependent(group: Group) -> bool:
    """True when membership can change by the passage of time alone (`window_days` or `recency`)."""
    return any(isinstance(c, Recency) or getattr(c, "window_days", None) is not None for c in conditions(group))


def conditions(group: Group) -> list[Condition]:
    """Every leaf condition of a definition, depth first."""
    found: list[Condition] = []
    for node in group.conditions:
        found.extend(conditions(node) if isinstance(node, Group) else [node])
    return found
