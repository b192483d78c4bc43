"""Cloud Function `track`: `POST /api/ingestion/track/` (one event)."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def track(request: Request) -> Response:
    return http_app("track").handle(request)
