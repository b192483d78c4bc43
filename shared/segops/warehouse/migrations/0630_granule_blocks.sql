-- The two tables a delta reads by candidate, `user_day_states` (0600: their state rows) and
-- `user_memberships` (0620: their previous membership when their segments are large), written with
-- one compressed block per granule. ClickHouse decompresses whole blocks, and a block was 64 KiB of
-- uncompressed column data: 8 to 64 of their 256-row granules. 1,000 random candidates hit a granule
-- in nearly every block, so those reads decompressed about the tenant's whole table: O(tenant), not
-- O(candidates), ~10x slower at scale 1.0 than at 0.1 (docs/performance.md, "Delta statements").
-- A block per granule costs 1/3 (states) to 3/4 (memberships) more disk and makes those reads follow
-- the candidates' granules; a full pass reads every block either way. OPTIMIZE rewrites the existing
-- parts with the setting; later parts (inserts, merges) get it from the table. Idempotent: a re-run
-- rewrites them again.
ALTER TABLE user_day_states MODIFY SETTING min_compress_block_size = 1;

OPTIMIZE TABLE user_day_states FINAL;

ALTER TABLE user_memberships MODIFY SETTING min_compress_block_size = 1;

OPTIMIZE TABLE user_memberships FINAL
