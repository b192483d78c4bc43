"""Numeric ids in paths, queries and cursors are ASCII decimal digits only.

`int()` and werkzeug's `int` converter accept any script's decimal digits (U+0661 ARABIC-INDIC DIGIT
ONE is 1), so one id would have several spellings, and characters such as U+00B2 SUPERSCRIPT TWO pass
`str.isdigit()` yet make `int()` raise.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter


def parse_id(text: str) -> int | None:
    """The id `text` spells in ASCII digits, or None."""
    if text.isascii() and text.isdigit():
        return int(text)
    return None


class AsciiIntConverter(IntegerConverter):
    """`<int:...>` path segments: ASCII digits only (anything else does not match the route: 404)."""

    regex = r"[0-9]+"
