-- The two tables a delta reads by candidate, `user_day_states` (0600: their state rows) and
-- `user_memberships` (0620: their previous membership when their segments are large), written in
-- compressed blocks of ~4 KiB instead of 64 KiB. ClickHouse decompresses whole blocks, and a
-- 64 KiB block held 8 to 64 of their 256-row granules: 1,000 random candidates hit a granule in
-- nearly every block, so those reads decompressed about the tenant's whole table: O(tenant), not
-- O(candidates), ~10x slower at scale 1.0 than at 0.1 (docs/performance.md, "Delta statements at
-- scale 1.0"). 4 KiB is 1-4 granules of a column of 4 to 16 bytes a row; measured at 1.0 against a
-- block per granule (min_compress_block_size = 1), it keeps most of the delta's gain (95 vs 82 ms)
-- at a fraction of the full pass's loss (+10% vs +40%) and of the extra disk (+11% vs +33%).
-- OPTIMIZE rewrites the existing parts with the setting; later parts (inserts, merges) get it from
-- the table. Idempotent: a re-run rewrites them again.
ALTER TABLE user_day_states MODIFY SETTING min_compress_block_size = 4096;

OPTIMIZE TABLE user_day_states FINAL;

ALTER TABLE user_memberships MODIFY SETTING min_compress_block_size = 4096;

OPTIMIZE TABLE user_memberships FINAL
