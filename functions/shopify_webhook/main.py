"""Cloud Function `shopify_webhook`: `POST /api/ingestion/shopify/<tenant_slug>/` (HMAC-signed webhooks)."""

import functions_framework
from flask import Request, Response
from segops.catalog import http_app


@functions_framework.http
def shopify_webhook(request: Request) -> Response:
    return http_app("shopify_webhook").handle(request)
