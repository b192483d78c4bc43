"""Cloud Function `event_writer`: Pub/Sub topic `events` → ClickHouse `events`, exactly once."""

from typing import Any

import functions_framework
from segops.bus.consumer import consume
from segops.ingestion.writer import configure_writer_process, handle_event_batch

configure_writer_process()


@functions_framework.cloud_event
def event_writer(event: Any) -> None:
    consume(event, handle_event_batch, "event_writer")
