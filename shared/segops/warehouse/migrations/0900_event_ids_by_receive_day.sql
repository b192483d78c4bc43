-- The event writer's id lookup (docs/ingestion.md, "Exactly once") read `by_event_id`, ordered by
-- (tenant_id, event_id). Ids are random, so a flush's ids hit nearly every granule of it: each
-- lookup read the tenant's whole history (25,000 ids: 13 granules and 49 ms at 100,000 stored
-- events, 489 granules and 161 ms at 4,000,000), and the writer slowed down as the tenant grew.
-- This projection puts the receive day before the id: the lookup, bounded to the days since the
-- dedup horizon (`writer_dedup_horizon_days`), reads only those days' granules.
-- A lookup never depends on a projection for its answer, only for its speed: while this one is
-- being built, lookups read the table itself and find the same ids.
ALTER TABLE events ADD PROJECTION IF NOT EXISTS by_received_event_id (
    SELECT tenant_id, toDate(received_at) AS received_day, event_id
    ORDER BY tenant_id, received_day, event_id
);

ALTER TABLE events MATERIALIZE PROJECTION by_received_event_id SETTINGS mutations_sync = 1;

ALTER TABLE events DROP PROJECTION IF EXISTS by_event_id SETTINGS mutations_sync = 1
