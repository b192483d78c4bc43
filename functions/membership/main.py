"""Cloud Function `membership`: per-user segment membership lookups, served from the cache."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def membership(request: Request) -> Response:
    return http_app("membership").handle(request)
