-- Events: tenant first in the sorting key; per-user ranges are contiguous for aggregation.
-- Exactly-once is the event writer's job (docs/ingestion.md): deterministic event ids, an insert
-- deduplication token per block (the dedup window below), and an existence check through the
-- `by_event_id` projection, which is written atomically with each part. ReplacingMergeTree stays as
-- a last safety net; its merges rebuild the projection.
CREATE TABLE IF NOT EXISTS events (
    tenant_id UInt64,
    event_id UUID,
    message_id String,
    user_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    payload String CODEC(ZSTD(1)),
    INDEX received_at_minmax received_at TYPE minmax GRANULARITY 1,
    PROJECTION by_event_id (SELECT tenant_id, event_id ORDER BY tenant_id, event_id)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, user_id, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 100000,
         deduplicate_merge_projection_mode = 'rebuild';

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
