"""The built web console (`console/dist`) as a WSGI app for `make dev`: the SPA and its assets at `/`.

Paths a function claims (`/api/*`, `/v1/*`) never reach it. A path that is not a file of the build
is a client route and gets `index.html` (the load balancer's bucket does the same in production,
see terraform/console.tf).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from werkzeug.wrappers import Request, Response

from segops.localstack import LocalStack, WsgiApp
from segops.manifest import route_for

# Vite puts a content hash in every asset name: they never change, so browsers may keep them a year;
# index.html names the current ones and must always be revalidated.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class ConsoleAssets:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.respond(request.path, request.method)
        return response(environ, start_response)

    def respond(self, path: str, method: str) -> Response:
        if method not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", f"{method} is not allowed on {path}")
        index = self.root / "index.html"
        if not index.is_file():
            return _error(404, "not_found", "the console is not built: run `make dev` (it builds console/)")
        file = self._file(path)
        if file is None and path.startswith("/assets/"):
            # An asset of an older build: index.html in its place would fail as a script, confusingly.
            return _error(404, "not_found", f"no asset {path}")
        if file is None:
            return _file_response(index, REVALIDATE)
        return _file_response(file, IMMUTABLE if file.parent.name == "assets" else REVALIDATE)

    def _file(self, path: str) -> Path | None:
        """The build's file for `path`; None for anything else, including a path escaping the root."""
        candidate = (self.root / path.lstrip("/")).resolve()
        if candidate == self.root or not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate


def with_console(stack: LocalStack, console: WsgiApp) -> WsgiApp:
    """One origin, as the load balancer does it: paths a function claims (the manifest's routes:
    `/api/*`, `/v1/*`, ...) and the dev mailbox go to the stack, every other path to the console."""

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        claimed = route_for(stack.manifest, path) is not None or path.startswith("/dev/")
        return (stack.wsgi if claimed else console)(environ, start_response)

    return dispatch


def _file_response(file: Path, cache_control: str) -> Response:
    mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    response = Response(file.read_bytes(), mimetype=mimetype)
    response.headers["Cache-Control"] = cache_control
    return response


def _error(status: int, code: str, message: str) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message, "details": {}}})
    return Response(body, status=status, mimetype="application/json")
