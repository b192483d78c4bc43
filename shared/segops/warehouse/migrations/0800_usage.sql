-- Usage metering (segops.metering, docs/operations.md § Usage metering): every billable unit per
-- tenant and hour. Two tables because units reach the warehouse in two ways:
-- `usage` sums additive counts: the event writer's stored events through the view below (exactly
-- once because the writer's inserts are), and the per-process buffers' flushes of API calls and
-- accepted/refused events (each flush an INSERT with its own deduplication token, so a retried flush
-- is dropped by the window below).
CREATE TABLE IF NOT EXISTS usage (
    tenant_id UInt64,
    hour DateTime('UTC'),
    metric LowCardinality(String),
    dimension LowCardinality(String),
    value UInt64
) ENGINE = SummingMergeTree(value)
ORDER BY (tenant_id, hour, metric, dimension)
SETTINGS non_replicated_deduplication_window = 100000,
         replicated_deduplication_window = 100000,
         replicated_deduplication_window_seconds = 86400;

-- Hour of receipt (stamped at the edge), not of the insert: a redelivered block must be the same
-- block for `deduplicate_blocks_in_dependent_materialized_views` to drop it.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_events_stored_mv TO usage AS
SELECT tenant_id, toStartOfHour(received_at) AS hour, 'events_stored' AS metric, '' AS dimension, count() AS value
FROM events
GROUP BY tenant_id, hour;

-- Units that carry their own idempotency key (a compute's ids, an export id, a connector sync's
-- change): one row per unit and metric; recording a unit again (a compute, export or sync that ran
-- again after a redelivery) replaces it, the largest value winning (a re-run that found its work
-- already done must not erase it). Read with FINAL.
CREATE TABLE IF NOT EXISTS usage_units (
    tenant_id UInt64,
    metric LowCardinality(String),
    dimension LowCardinality(String),
    unit_id String,
    hour DateTime('UTC'),
    value UInt64
) ENGINE = ReplacingMergeTree(value)
ORDER BY (tenant_id, metric, dimension, unit_id);
