"""Cloud Function `sandbox`: what-if evaluation of a simulated event against all active segments."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def sandbox(request: Request) -> Response:
    return http_app("sandbox").handle(request)
