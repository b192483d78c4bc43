"""Event ingestion: edge validation (track, batch, Shopify), the event writer, stats and error records."""
