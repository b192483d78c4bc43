"""The one place SQL identifiers are produced. Only allow-listed names pass; values never come here."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_identifier(name: str) -> str:
    """Backtick-quote a column, table or alias name that matches the allow-list; anything else raises."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not an allowed SQL identifier: {name!r}")
    return f"`{name}`"


def segment_column(segment_id: int) -> str:
    """The output column carrying one segment's boolean in a multi-segment pass."""
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) or segment_id < 0:
        raise ValueError(f"segment id must be a non-negative integer: {segment_id!r}")
    return f"s_{segment_id}"
