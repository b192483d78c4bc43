"""Cloud Function `export_worker`: renders a segment's members into the object store (topic `segment-exports`)."""

from typing import Any

import functions_framework
from segops.bus.consumer import consume
from segops.exports.worker import handle_export_message


@functions_framework.cloud_event
def export_worker(event: Any) -> None:
    consume(event, handle_export_message, "export_worker")
