-- One table of events by time instead of two. A delta compute finds the users whose events just
-- became visible or just crossed a window edge by ranges of occurred_at; it read them from
-- `event_timeline` (migration 0200), which held the same rows as `event_days` (0600) with fewer
-- columns, filled by a view of its own on every `events` INSERT. `event_days` is re-sorted by
-- (tenant, day, occurred_at) so those ranges are index ranges here, and `event_timeline` goes with
-- its view. The segment pass reads `event_days` by whole days (boundary days), which either order
-- serves; a delta's `user_id IN (candidates)` no longer narrows a day's granules, which it only did
-- for candidate sets far smaller than a granule's users (docs/performance.md, "Delta statements").
-- Idempotent (a failed run is re-run whole): the new table is rebuilt from `events`, the source of
-- truth; exact only while nothing is inserted into `events`: the event writer is paused for this
-- migration, as for 0600.
DROP VIEW IF EXISTS event_timeline_mv;

DROP TABLE IF EXISTS event_timeline;

DROP VIEW IF EXISTS event_days_mv;

CREATE TABLE IF NOT EXISTS event_days_by_time (
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
ORDER BY (tenant_id, day, occurred_at)
SETTINGS non_replicated_deduplication_window = 100000,
         replicated_deduplication_window = 100000,
         replicated_deduplication_window_seconds = 86400;

TRUNCATE TABLE IF EXISTS event_days_by_time;

INSERT INTO event_days_by_time
SELECT tenant_id, toDate32(occurred_at) AS day, user_id, event_type, occurred_at, received_at,
    if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), NULL) AS total,
    if(event_type = 'context_identified', payload, '') AS identity
FROM events
SETTINGS max_partitions_per_insert_block = 0;

DROP TABLE IF EXISTS event_days;

RENAME TABLE event_days_by_time TO event_days;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_days_mv TO event_days AS
SELECT tenant_id, toDate32(occurred_at) AS day, user_id, event_type, occurred_at, received_at,
    if(JSONType(payload, 'total') IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, 'total'), NULL) AS total,
    if(event_type = 'context_identified', payload, '') AS identity
FROM events
