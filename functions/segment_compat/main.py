"""Cloud Function `segment_compat`: Segment's HTTP tracking API, `POST /v1/<call>` (docs/ingestion.md)."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def segment_compat(request: Request) -> Response:
    return http_app("segment_compat").handle(request)
