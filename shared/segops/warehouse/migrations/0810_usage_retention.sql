-- Usage retention (docs/operations.md § Usage metering): rows whose hour is older than
-- SEGOPS_USAGE_RETENTION_DAYS (default 400: a year of invoices and the month after to dispute one)
-- are dropped by ClickHouse's TTL merges. The number is bound from the migrating process's settings
-- (`segops.warehouse.migrations.migrate`), so it is fixed when this migration is applied.
ALTER TABLE usage MODIFY TTL hour + INTERVAL {usage_retention_days:UInt32} DAY;
ALTER TABLE usage_units MODIFY TTL hour + INTERVAL {usage_retention_days:UInt32} DAY;
