"""Ids are positive 64-bit integers, wherever a request names one (path, query, body).

Everything below stores and binds them as 64-bit (ClickHouse UInt64 parameters, orjson): a larger
number names no resource, and letting it through overflows further down.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ID_MIN = 1
ID_MAX = 2**63 - 1

Id = Annotated[int, Field(ge=ID_MIN, le=ID_MAX)]
