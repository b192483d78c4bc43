-- `user_day_states` (migration 0600) written with one compressed block per granule. ClickHouse
-- decompresses whole blocks, and a block was 64 KiB of uncompressed column data: 8 to 64 granules
-- of 256 rows. A delta's 1,000 random candidates hit a granule in nearly every block, so its state
-- read decompressed almost the tenant's whole table (O(tenant), not O(candidates): ~10x slower at
-- scale 1.0 than at 0.1; docs/performance.md, "Delta statements"). Each granule alone costs ~1/3
-- more disk and makes that read proportional to the candidates' granules; a full pass reads every
-- block either way. OPTIMIZE rewrites the existing parts with the setting (idempotent: a re-run
-- rewrites them again).
ALTER TABLE user_day_states MODIFY SETTING min_compress_block_size = 1;

OPTIMIZE TABLE user_day_states FINAL
