"""Ids are positive 64-bit integers, wherever a request names one (path, query, body).

Everything below stores and binds them as 64-bit (ClickHouse UInt64 parameters, orjson): a larger
number names no resource, and letting it through overflows further down.

Spelled in text (paths, `?tenant=`, headers) an id is ASCII decimal digits only: `int()` and
werkzeug's `int` converter accept any script's decimal digits (U+0661 ARABIC-INDIC DIGIT ONE is 1),
so one id would have several spellings, and characters such as U+00B2 SUPERSCRIPT TWO pass
`str.isdigit()` yet make `int()` raise.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

ID_MIN = 1
ID_MAX = 2**63 - 1

Id = Annotated[int, Field(ge=ID_MIN, le=ID_MAX)]
# In a JSON body an id is a JSON number: "7" is a string there, not an id.
BodyId = Annotated[StrictInt, Field(ge=ID_MIN, le=ID_MAX)]


def parse_id(text: str) -> int | None:
    """The id `text` spells in ASCII digits, or None."""
    if text.isascii() and text.isdigit():
        return int(text)
    return None
