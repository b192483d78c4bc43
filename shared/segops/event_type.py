"""What an event type may be, for ingestion and the segment DSL alike: snake_case, starting with a
letter, at most 128 characters. One definition, so a segment can never reference an event type
that ingestion refuses (and would therefore wait forever for an event that cannot arrive)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,127}$"
EventType = Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN)]

# `fullmatch` without anchors: Python's `$` would also accept one trailing newline.
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN.removeprefix("^").removesuffix("$"))


def is_event_type(text: str) -> bool:
    return _EVENT_TYPE.fullmatch(text) is not None
