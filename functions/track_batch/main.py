"""Cloud Function `track_batch`: `POST /api/ingestion/track/batch/` (up to 500 events)."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def track_batch(request: Request) -> Response:
    return http_app("track_batch").handle(request)
