"""Map SegOps user ids to the identifier a platform keys its users by (the user id, or a user property)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from segops.connectors.delivery import Tally
from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse
from segops.warehouse.params import array_parts

LOOKUP_BATCH = 1000
# A ClickHouse server refuses a bound parameter longer than `http_max_field_value_size` (128 KiB by
# default): 1,000 user ids of up to 256 characters could be 260 KB, so a batch is also cut by the
# size of the parameter it becomes (`array_parts`).
LOOKUP_BATCH_BYTES = 100_000

# The latest identify payload per user (argMax state of migration 0001), one property out of it;
# a dotted name walks nested objects (`crm.id`), one bound parameter per path segment.
_PROPERTY_SQL = """
SELECT user_id, JSONExtractRaw(argMaxMerge(properties), {path}) AS raw
FROM user_properties
WHERE tenant_id = {{tenant_id:UInt64}} AND user_id IN {{user_ids:Array(String)}}
GROUP BY user_id
"""


@dataclass(frozen=True)
class Recipient:
    user_id: str
    identifier: str


class IdentityResolver:
    """`property=None` keys by user id; otherwise by that user property, skipping users without a usable one."""

    def __init__(self, runtime: Runtime, tenant_id: int, property: str | None, kind: str = "identifier") -> None:
        self.warehouse = TenantWarehouse(runtime.warehouse, tenant_id)
        self.property = property
        self.kind = kind

    def resolve(self, user_ids: Iterable[str], tally: Tally) -> Iterator[Recipient]:
        for batch in array_parts(user_ids, LOOKUP_BATCH_BYTES, LOOKUP_BATCH):
            if self.property is None:
                yield from (Recipient(u, u) for u in batch)
                continue
            found = self._lookup(batch)
            for user_id in batch:
                value = found.get(user_id)
                reason = self._unusable(value)
                if reason is not None:
                    tally.skip(reason)
                    continue
                assert value is not None
                yield Recipient(user_id, value)

    def _lookup(self, user_ids: list[str]) -> dict[str, str]:
        assert self.property is not None
        segments = self.property.split(".")
        path = ", ".join(f"{{p{i}:String}}" for i in range(len(segments)))
        params: dict[str, object] = {f"p{i}": part for i, part in enumerate(segments)}
        rows = self.warehouse.query(_PROPERTY_SQL.format(path=path), {**params, "user_ids": user_ids}).rows
        values: dict[str, str] = {}
        for user_id, raw in rows:
            value = _scalar(raw)
            if value is not None:
                values[str(user_id)] = value
        return values

    def _unusable(self, value: str | None) -> str | None:
        if value is None or not value.strip():
            return f"no {self.property} user property"
        if self.kind == "email" and ("@" not in value or len(value) > 320 or any(c.isspace() for c in value.strip())):
            return f"invalid {self.property} user property"
        return None


def _scalar(raw: object) -> str | None:
    """A JSON string or number as text; anything else (objects, booleans, null, absent) is unusable."""
    if not isinstance(raw, str | bytes) or not raw:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    return None
