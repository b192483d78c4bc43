-- Segment membership as a versioned change log (segops.membership.store explains the design).
-- Every compute writes only its diff: one row per user who entered (entered = 1) or exited (0),
-- tagged with a fresh version. Nothing is visible until the compute's row lands in
-- membership_commits (a one-row insert: the atomic publication point). Membership at snapshot V is,
-- per user, the latest committed change with version <= V.

-- Members of segment S: range on (tenant_id, segment_id), read in user_id order for pagination.
CREATE TABLE IF NOT EXISTS segment_memberships (
    tenant_id UInt64,
    segment_id UInt64,
    user_id String,
    version UInt64,
    entered UInt8,
    compute_id String,
    computed_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (tenant_id, segment_id, user_id, version);

-- Segments of user U: the same rows keyed by user.
CREATE TABLE IF NOT EXISTS user_memberships (
    tenant_id UInt64,
    user_id String,
    segment_id UInt64,
    version UInt64,
    entered UInt8
) ENGINE = MergeTree
ORDER BY (tenant_id, user_id, segment_id, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_memberships_mv TO user_memberships AS
SELECT tenant_id, user_id, segment_id, version, entered FROM segment_memberships;

-- The diff of one compute (connectors, sandbox comparisons, audit): range on (segment, version).
CREATE TABLE IF NOT EXISTS membership_changes (
    tenant_id UInt64,
    segment_id UInt64,
    version UInt64,
    user_id String,
    change Enum8('entered' = 1, 'exited' = 2),
    compute_id String,
    computed_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (tenant_id, segment_id, version, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS membership_changes_mv TO membership_changes AS
SELECT tenant_id, segment_id, version, user_id, if(entered = 1, 'entered', 'exited') AS change, compute_id, computed_at
FROM segment_memberships;

-- One row per published compute that changed something; its presence makes `version` visible.
CREATE TABLE IF NOT EXISTS membership_commits (
    tenant_id UInt64,
    segment_id UInt64,
    version UInt64,
    compute_id String,
    mode LowCardinality(String),
    computed_at DateTime64(3, 'UTC'),
    member_count UInt64,
    entered_count UInt64,
    exited_count UInt64,
    committed_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree
ORDER BY (tenant_id, segment_id, version);

-- Scratch space of a running compute: its candidate users (delta) and its per-segment results.
CREATE TABLE IF NOT EXISTS compute_candidates (
    tenant_id UInt64,
    compute_id String,
    user_id String,
    created_at DateTime DEFAULT now()
) ENGINE = MergeTree
ORDER BY (tenant_id, compute_id, user_id)
TTL created_at + INTERVAL 1 DAY;

CREATE TABLE IF NOT EXISTS compute_results (
    tenant_id UInt64,
    compute_id String,
    segment_id UInt64,
    user_id String,
    created_at DateTime DEFAULT now()
) ENGINE = MergeTree
ORDER BY (tenant_id, compute_id, segment_id, user_id)
TTL created_at + INTERVAL 1 DAY;

-- When users' events reached the warehouse (warehouse clock), for delta computes: events can be
-- inserted late with an old occurred_at/received_at, so neither of those finds them.
CREATE TABLE IF NOT EXISTS event_arrivals (
    tenant_id UInt64,
    arrived_at DateTime64(3, 'UTC'),
    user_id String
) ENGINE = MergeTree
ORDER BY (tenant_id, arrived_at, user_id)
TTL toDateTime(arrived_at) + INTERVAL 7 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_arrivals_mv TO event_arrivals AS
SELECT tenant_id, now64(3) AS arrived_at, user_id FROM events GROUP BY tenant_id, user_id;

-- The tenant's events by time (narrow columns only), for delta computes: which users have an event
-- that just became visible or just crossed a window boundary is a range scan, not a scan of history.
CREATE TABLE IF NOT EXISTS event_timeline (
    tenant_id UInt64,
    occurred_at DateTime64(3, 'UTC'),
    event_type LowCardinality(String),
    user_id String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, occurred_at, event_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS event_timeline_mv TO event_timeline AS
SELECT tenant_id, occurred_at, event_type, user_id FROM events;
