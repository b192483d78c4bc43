"""Cloud Function `api`: the management API (auth, tenants, keys, segments, connectors)."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def api(request: Request) -> Response:
    return http_app("api").handle(request)
