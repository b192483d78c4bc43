-- Per-user aggregate states maintained at write time, read by segment computes instead of raw
-- events (docs/design.md §6, "Reading per-user states"). `day` is the UTC date of occurred_at
-- (Date32: the whole DateTime64 range, so a window reaching back a century stays exact).

-- One row per (user, event type, day): counts, the typed hot payload path `total` (numeric values
-- only: count, sum, min, max; +inf/-inf stand for "no value" and are never read without a count),
-- the latest occurred_at, and for context_identified the latest (occurred_at, received_at, payload).
-- Granules of 256 narrow rows (~25 users): a delta's candidates touch few of them.
CREATE TABLE IF NOT EXISTS user_day_states (
    tenant_id UInt64,
    user_id String,
    event_type LowCardinality(String),
    day Date32,
    events SimpleAggregateFunction(sum, UInt64),
    totals SimpleAggregateFunction(sum, UInt64),
    total_sum SimpleAggregateFunction(sum, Float64),
    total_min SimpleAggregateFunction(min, Float64),
    total_max SimpleAggregateFunction(max, Float64),
    last_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    identity SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), DateTime64(3, 'UTC'), String)) CODEC(ZSTD(1))
) ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, user_id, event_type, day)
SETTINGS index_granularity = 256,
         non_replicated_deduplication_window = 100000,
         replicated_deduplication_window = 100000,
         replicated_deduplication_window_seconds = 86400;

-- One narrow row per event, by day then user: the boundary days of a window are read from here
-- (exact occurred_at, typed `total`, the payload of a context_identified only).
CREATE TABLE IF NOT EXISTS event_days (
    tenant_id UInt64,
    day Date32,
    user_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    total Nullable(Float64),
    identity String CODEC(ZSTD(1))
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, user_id)
SETTINGS non_replicated_deduplication_window = 100000,
         replicated_deduplication_window = 100000,
         replicated_deduplication_window_seconds = 86400;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_day_states_mv TO user_day_states AS
SELECT tenant_id, user_id, event_type, toDate32(occurred_at) AS day,
    count() AS events,
    countIf(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double')) AS totals,
    sum(if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), 0)) AS total_sum,
    min(if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), inf)) AS total_min,
    max(if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), -inf)) AS total_max,
    max(occurred_at) AS last_at,
    maxIf((occurred_at, received_at, payload), event_type = 'context_identified') AS identity
FROM events
GROUP BY tenant_id, user_id, event_type, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_days_mv TO event_days AS
SELECT tenant_id, toDate32(occurred_at) AS day, user_id, event_type, occurred_at, received_at,
    if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), NULL) AS total,
    if(event_type = 'context_identified', payload, '') AS identity
FROM events;

-- Backfill what `events` held before the views existed. Idempotent (a failed run is re-run whole);
-- exact only while nothing is inserted into `events`: the event writer is paused for this migration.
-- One INSERT may span every month of a tenant's history (event_days is partitioned by month).
TRUNCATE TABLE IF EXISTS user_day_states;

TRUNCATE TABLE IF EXISTS event_days;

INSERT INTO user_day_states
SELECT tenant_id, user_id, event_type, toDate32(occurred_at) AS day,
    count() AS events,
    countIf(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double')) AS totals,
    sum(if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), 0)) AS total_sum,
    min(if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), inf)) AS total_min,
    max(if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), -inf)) AS total_max,
    max(occurred_at) AS last_at,
    maxIf((occurred_at, received_at, payload), event_type = 'context_identified') AS identity
FROM events
GROUP BY tenant_id, user_id, event_type, day
SETTINGS max_bytes_before_external_group_by = 1000000000;

INSERT INTO event_days
SELECT tenant_id, toDate32(occurred_at) AS day, user_id, event_type, occurred_at, received_at,
    if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), NULL) AS total,
    if(event_type = 'context_identified', payload, '') AS identity
FROM events
SETTINGS max_partitions_per_insert_block = 0;
