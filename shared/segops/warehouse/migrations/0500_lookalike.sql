-- Scratch space of a lookalike compute or preview (segops.lookalike): one feature vector per user
-- of the tenant, written by one aggregate pass over its events, then read to train the model on
-- seed members vs a sample of the others and to score everyone else.
CREATE TABLE IF NOT EXISTS lookalike_features (
    tenant_id UInt64,
    compute_id String,
    user_id String,
    seed UInt8,
    features Array(Float64),
    created_at DateTime DEFAULT now()
) ENGINE = MergeTree
ORDER BY (tenant_id, compute_id, user_id)
TTL created_at + INTERVAL 1 DAY;
