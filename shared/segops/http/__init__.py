"""HTTP layer: routing, request parsing, auth resolution and the one error shape."""

from segops.http.routing import HttpApp, RequestContext, Result, Router

__all__ = ["HttpApp", "RequestContext", "Result", "Router"]
