-- What each push connector may have put on its platform: present=1 is written before an add is
-- attempted, present=0 only after a removal succeeded, so the ledger is a superset of the remote
-- audience (for users SegOps manages). A full sync removes ledger users who are no longer members.
-- ReplacingMergeTree on a nanosecond version: the latest mark per (connector, user) wins.
CREATE TABLE IF NOT EXISTS connector_ledger (
    tenant_id UInt64,
    connector_id UInt64,
    user_id String,
    present UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant_id, connector_id, user_id);
