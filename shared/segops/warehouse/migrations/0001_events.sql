-- Events: tenant first in the sorting key; per-user ranges are contiguous for aggregation.
-- ReplacingMergeTree on event_id is a safety net; the event writer already never inserts a duplicate.
CREATE TABLE IF NOT EXISTS events (
    tenant_id UInt64,
    event_id UUID,
    message_id String,
    user_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    payload String CODEC(ZSTD(1))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, user_id, occurred_at, event_id);

-- Current user properties: payload of the latest context_identified (by occurred_at, then received_at).
CREATE TABLE IF NOT EXISTS user_properties (
    tenant_id UInt64,
    user_id String,
    properties AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), DateTime64(3, 'UTC')))
) ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_properties_mv TO user_properties AS
SELECT tenant_id, user_id, argMaxState(payload, (occurred_at, received_at)) AS properties
FROM events
WHERE event_type = 'context_identified'
GROUP BY tenant_id, user_id;

CREATE TABLE IF NOT EXISTS ingestion_errors (
    tenant_id UInt64,
    ts DateTime64(3, 'UTC'),
    error_type LowCardinality(String),
    detail String,
    source LowCardinality(String)
) ENGINE = MergeTree
ORDER BY (tenant_id, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY;
