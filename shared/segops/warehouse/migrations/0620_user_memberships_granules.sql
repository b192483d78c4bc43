-- `user_memberships` (migration 0200: the membership change log by user) re-created with granules of
-- 256 rows instead of 8,192. A delta compute reads its candidates' previous membership from it when
-- their segments are large (`segops.membership.writer`): one small granule per candidate instead of
-- every granule of the segments; a lookup reads one small granule too.
-- Idempotent (a failed run is re-run whole): the new table is filled from `segment_memberships`,
-- which holds the same rows; run it with computes paused (a diff written between the view's drop and
-- its re-creation would miss this copy), as the event writer is for 0600 and 0610.
DROP VIEW IF EXISTS user_memberships_mv;

CREATE TABLE IF NOT EXISTS user_memberships_by_granule (
    tenant_id UInt64,
    user_id String,
    segment_id UInt64,
    version UInt64,
    entered UInt8
) ENGINE = MergeTree
ORDER BY (tenant_id, user_id, segment_id, version)
SETTINGS index_granularity = 256;

TRUNCATE TABLE IF EXISTS user_memberships_by_granule;

INSERT INTO user_memberships_by_granule
SELECT tenant_id, user_id, segment_id, version, entered FROM segment_memberships;

DROP TABLE IF EXISTS user_memberships;

RENAME TABLE user_memberships_by_granule TO user_memberships;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_memberships_mv TO user_memberships AS
SELECT tenant_id, user_id, segment_id, version, entered FROM segment_memberships
