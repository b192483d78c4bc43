"""A tenant's own words: its event types, their payload keys, user property keys and frequent values.

Both draft providers ground names in this, so "purchased" becomes the tenant's `order_placed` and
"pricing page" becomes `page_viewed` where `path` = `/pricing` only when the data shows such
values. Read from ClickHouse in one tenant-scoped, parameter-bound query over a bounded sample of
events (any rows of the tenant, so a rare event type can be missed) and of current user properties
(`user_properties`); only top-level payload keys are described.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segops.dsl import PROPERTIES_EVENT_TYPE
from segops.warehouse import TenantWarehouse, Warehouse

SAMPLE_ROWS = 50_000
# Keys with more distinct string values than this are identifiers (emails, order ids): no values kept.
MAX_DISTINCT_VALUES = 50
TOP_VALUES = 20


@dataclass(frozen=True)
class Key:
    """One top-level key: the JSON kinds seen (`String`, `Int64`, `Double`, `Bool`), frequent string values."""

    name: str
    kinds: frozenset[str]
    values: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        return bool(self.kinds & {"Int64", "UInt64", "Double"})

    @property
    def boolean(self) -> bool:
        return self.kinds == frozenset({"Bool"})


# Names an amount usually goes by, in order of preference.
AMOUNT_KEYS = ("total", "amount", "revenue", "value", "price", "subtotal", "sum")


@dataclass(frozen=True)
class EventTypeVocabulary:
    name: str
    events: int
    keys: dict[str, Key] = field(default_factory=dict)

    def amount_key(self) -> Key | None:
        """The numeric payload key that most likely holds the money of this event, if any."""
        numeric = [key for key in self.keys.values() if key.numeric]
        for name in AMOUNT_KEYS:
            for key in numeric:
                if key.name.lower() == name:
                    return key
        return numeric[0] if numeric else None


@dataclass(frozen=True)
class Vocabulary:
    """Event types by descending frequency (`context_identified` excluded) and user property keys."""

    event_types: dict[str, EventTypeVocabulary]
    properties: dict[str, Key]

    def summary(self) -> dict[str, object]:
        """A compact JSON-able description, for a language model's prompt."""
        return {
            "event_types": {
                name: {key.name: _describe(key) for key in et.keys.values()} for name, et in self.event_types.items()
            },
            "user_properties": {key.name: _describe(key) for key in self.properties.values()},
        }


def _describe(key: Key) -> dict[str, object]:
    described: dict[str, object] = {"kinds": sorted(key.kinds)}
    if key.values:
        described["values"] = list(key.values)
    return described


_KEYS_SQL = f"""
SELECT event_type, key, groupUniqArray(kind) AS kinds, uniqExact(text) AS distinct_values,
       topKIf({TOP_VALUES})(text, kind = 'String') AS top, any(events) AS events
FROM (
  SELECT event_type, kv.1 AS key, toString(JSONType(kv.2)) AS kind,
         if(kind = 'String', JSONExtractString(kv.2), '') AS text, events
  FROM (
    SELECT event_type, payload, count() OVER (PARTITION BY event_type) AS events
    FROM (
      SELECT event_type, payload FROM events
      WHERE tenant_id = {{tenant_id:UInt64}} AND event_type != {{identify:String}} LIMIT {{sample:UInt64}}
      UNION ALL
      SELECT {{identify:String}}, argMaxMerge(properties) FROM user_properties
      WHERE tenant_id = {{tenant_id:UInt64}} GROUP BY user_id LIMIT {{sample:UInt64}}
    )
  )
  LEFT ARRAY JOIN JSONExtractKeysAndValuesRaw(payload) AS kv
)
GROUP BY event_type, key
ORDER BY events DESC, event_type, key
"""


def tenant_vocabulary(warehouse: Warehouse, tenant_id: int) -> Vocabulary:
    """The vocabulary of one tenant, from at most `SAMPLE_ROWS` of its events."""
    params = {"sample": SAMPLE_ROWS, "identify": PROPERTIES_EVENT_TYPE}
    rows = TenantWarehouse(warehouse, tenant_id).query(_KEYS_SQL, params).rows
    event_types: dict[str, EventTypeVocabulary] = {}
    properties: dict[str, Key] = {}
    for event_type, name, kinds, distinct, top, events in rows:
        kinds_seen = frozenset(str(k) for k in kinds) - {"Null"}
        described = event_types.setdefault(str(event_type), EventTypeVocabulary(str(event_type), int(events)))
        if not name or not kinds_seen:
            continue  # an event without payload keys (LEFT ARRAY JOIN) or only nulls
        values = tuple(str(v) for v in top if v) if int(distinct) <= MAX_DISTINCT_VALUES else ()
        key = Key(str(name), kinds_seen, values)
        described.keys[key.name] = key
        if event_type == PROPERTIES_EVENT_TYPE:
            properties[key.name] = key
    event_types.pop(PROPERTIES_EVENT_TYPE, None)
    return Vocabulary(event_types, properties)
