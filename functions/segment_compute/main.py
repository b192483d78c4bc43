"""Cloud Function `segment_compute`: full and delta membership computes (topic `segment-compute`)."""

from typing import Any

import functions_framework
from segops.bus.consumer import consume
from segops.compute.handler import handle_segment_compute


@functions_framework.cloud_event
def segment_compute(event: Any) -> None:
    consume(event, handle_segment_compute, "segment_compute")
