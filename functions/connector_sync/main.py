"""Cloud Function `connector_sync`: `membership-changes` → push each compute's diff to active connectors."""

import functions_framework
from cloudevents.http import CloudEvent
from segops.bus.consumer import consume
from segops.connectors.sync import handle_membership_changed


@functions_framework.cloud_event
def connector_sync(event: CloudEvent) -> None:
    consume(event, handle_membership_changed, "connector_sync")
