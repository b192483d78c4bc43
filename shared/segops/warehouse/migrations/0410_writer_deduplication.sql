-- Insert deduplication for the event writer (docs/ingestion.md). A block ClickHouse drops as a
-- duplicate (same insert_deduplication_token) must not reach the tables the views on `events` fill:
-- the writer inserts with deduplicate_blocks_in_dependent_materialized_views = 1, which only drops a
-- view block when the view's target table keeps a deduplication window too. The replicated windows
-- apply on ClickHouse Cloud (replicated/shared tables) and cover Pub/Sub's topic retention (1 day);
-- the `_for_async_inserts` ones cover the server-side async inserts the writer uses there.
ALTER TABLE events MODIFY SETTING
    replicated_deduplication_window = 100000,
    replicated_deduplication_window_seconds = 86400,
    replicated_deduplication_window_for_async_inserts = 100000,
    replicated_deduplication_window_seconds_for_async_inserts = 86400;

ALTER TABLE event_timeline MODIFY SETTING
    non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000,
    replicated_deduplication_window_seconds = 86400;

ALTER TABLE event_arrivals MODIFY SETTING
    non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000,
    replicated_deduplication_window_seconds = 86400;

ALTER TABLE user_properties MODIFY SETTING
    non_replicated_deduplication_window = 100000,
    replicated_deduplication_window = 100000,
    replicated_deduplication_window_seconds = 86400;
