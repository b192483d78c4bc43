"""Path-parameter converters: what `<int:…>` accepts in every route."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

# Ids are ClickHouse UInt64/Python ints stored as JSON numbers; anything outside 1..2^63-1 names no
# resource, and letting it through would overflow the warehouse's parameter types (a 500).
ID_MIN = 1
ID_MAX = 2**63 - 1


class IdConverter(IntegerConverter):
    """`<int:…>`: a positive 64-bit id, or the route does not match (404)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", ID_MIN)
        kwargs.setdefault("max", ID_MAX)
        super().__init__(map, *args, **kwargs)


CONVERTERS = {"int": IdConverter}
