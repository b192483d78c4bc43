"""Path-parameter converters: what `<int:…>` accepts in every route."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from segops.errors import NotFound
from segops.ids import ID_MAX, ID_MIN


class IdConverter(IntegerConverter):
    """`<int:…>`: a positive 64-bit id, or 404.

    werkzeug converts after it has picked the one rule for the path and method; a converter's own
    `ValidationError` would then report the methods of unrelated rules (a 405 for a GET), so an id out
    of range is answered here as what it is: nothing by that id. Only ASCII digits match
    (`segops.ids`): another script's digits are not a second spelling of an id."""

    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not ID_MIN <= number <= ID_MAX:
            raise NotFound("no resource has this id", {"id": value, "minimum": ID_MIN, "maximum": ID_MAX})
        return number


CONVERTERS = {"int": IdConverter}
