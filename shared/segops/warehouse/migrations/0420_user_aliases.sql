-- Identity mapping from Segment's `alias` call (docs/ingestion.md, "Anonymous users and alias"): a
-- `user_aliased` event says that the id in its payload's `previous_id` (typically an anonymousId) is
-- the user `user_id`. When one id was aliased more than once, the latest alias wins (by occurred_at,
-- then received_at). A plain view over `events`, not a materialized one: no extra work per insert,
-- and exactly as exactly-once as the events it reads (a duplicate row changes no argMax).
CREATE VIEW IF NOT EXISTS user_aliases AS
SELECT
    tenant_id,
    JSONExtractString(payload, 'previous_id') AS previous_id,
    argMax(user_id, (occurred_at, received_at)) AS user_id,
    max(occurred_at) AS aliased_at
FROM events
WHERE event_type = 'user_aliased'
GROUP BY tenant_id, previous_id;
