"""Cloud Function `connector_full_sync`: `connector-syncs` → push every current member of the segment."""

import functions_framework
from cloudevents.http import CloudEvent
from segops.bus.consumer import consume
from segops.connectors.sync import handle_sync_requested


@functions_framework.cloud_event
def connector_full_sync(event: CloudEvent) -> None:
    consume(event, handle_sync_requested, "connector_full_sync")
