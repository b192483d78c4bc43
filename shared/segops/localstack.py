"""The whole stack in one process: every HTTP function under the production URL map, every
Pub/Sub-triggered function fed by the local bus through its real functions-framework entry point."""

from __future__ import annotations

import html
import io
import sys
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

import functions_framework
import orjson
from flask import Flask
from werkzeug.test import Client
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

from segops.bus import dead_letters
from segops.bus.base import BusMessage
from segops.bus.cloudevents import to_cloudevent
from segops.bus.local import LocalBus
from segops.config import Settings
from segops.mailer import DevMailbox
from segops.manifest import Manifest, PubSubTrigger, load_manifest, route_for
from segops.metering.meter import close_meter
from segops.runtime import Runtime, build_runtime, set_runtime
from segops.warehouse.migrations import MigrationParameters, migrate

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DeliveryFailed(Exception):
    """The function answered a CloudEvent with a non-2xx status (Pub/Sub would redeliver)."""


class _Undelivered(RuntimeError):
    def __init__(self) -> None:
        super().__init__("the local stack stopped before delivering it")


class PublishDenied(PermissionError):
    """A function published to a topic its manifest entry does not list in `publishes`: deployed,
    it holds no roles/pubsub.publisher there (terraform/iam.tf), and Pub/Sub refuses the publish."""


# The function whose request or delivery this thread is serving, if any.
_serving: ContextVar[str | None] = ContextVar("segops_serving_function", default=None)


class LocalStack:
    def __init__(self, settings: Settings, manifest: Manifest | None = None, **overrides: Any) -> None:
        self.settings = settings
        self.manifest = manifest or load_manifest()
        if "bus" not in overrides and settings.bus == "local":
            overrides["bus"] = LocalBus(
                settings.bus_max_attempts, settings.bus_retry_base_seconds, concurrency=settings.bus_concurrency
            )
        self.runtime: Runtime = build_runtime(settings, **overrides)
        self._publishes = {spec.name: frozenset(spec.publishes) for spec in self.manifest.functions}
        if isinstance(self.runtime.bus, LocalBus):
            self.runtime.bus.authorize = self._authorize
        migrate(self.runtime.warehouse, parameters=MigrationParameters.of(settings))
        set_runtime(self.runtime)
        self.apps: dict[str, Flask] = {}
        for spec in self.manifest.functions:
            signature = "cloudevent" if isinstance(spec.trigger, PubSubTrigger) else "http"
            self.apps[spec.name] = functions_framework.create_app(spec.entry_point, str(spec.source), signature)
        if isinstance(self.runtime.bus, LocalBus):
            for spec in self.manifest.pubsub_functions():
                assert isinstance(spec.trigger, PubSubTrigger)
                self.runtime.bus.subscribe(
                    spec.trigger.topic,
                    spec.name,
                    self._deliverer(spec.name),
                    concurrency=spec.concurrency,
                    retry=spec.trigger.retry,
                )
        self._timer: threading.Timer | None = None

    @property
    def bus(self) -> LocalBus:
        assert isinstance(self.runtime.bus, LocalBus)
        return self.runtime.bus

    def push(self, function: str, message: BusMessage) -> int:
        """`message` pushed to `function` as Eventarc delivers it (a Pub/Sub CloudEvent through the
        function's functions-framework entry point); returns the HTTP status."""
        headers, body = to_cloudevent(message, self.settings.gcp_project, f"{function}-{message.topic}")
        return post_to_wsgi(self._serving(function), headers, orjson.dumps(body))

    def _serving(self, function: str) -> WsgiApp:
        """`function`'s app, with what it publishes held to its manifest `publishes` (`_authorize`)."""
        app = self.apps[function]

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            token = _serving.set(function)
            try:
                return app(environ, start_response)
            finally:
                _serving.reset(token)

        return serve

    def _authorize(self, topic: str) -> None:
        function = _serving.get()
        if function is not None and topic not in self._publishes[function]:
            raise PublishDenied(f"{function} may not publish to {topic}: not in its manifest `publishes`")

    def _deliverer(self, function: str) -> Callable[[BusMessage], None]:
        def deliver(message: BusMessage) -> None:
            status = self.push(function, message)
            if not 200 <= status < 300:
                raise DeliveryFailed(f"{function} answered {status}")

        return deliver

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = WRequest(environ).path
        mailbox = self.runtime.mailer
        if isinstance(mailbox, DevMailbox) and path in ("/dev/mailbox/", "/dev/mailbox.json"):
            return _mailbox_response(mailbox, path)(environ, start_response)
        spec = route_for(self.manifest, path)
        if spec is None:
            body = orjson.dumps({"error": {"code": "not_found", "message": f"no endpoint {path}", "details": {}}})
            response = WResponse(body, status=404, mimetype="application/json")
            return response(environ, start_response)
        return self._serving(spec.name)(environ, start_response)

    def client(self) -> Client:
        return Client(self.wsgi)

    def publish_schedules(self) -> None:
        for schedule in self.manifest.schedules:
            self.runtime.bus.publish(schedule.topic, orjson.dumps(schedule.data), {"schedule": schedule.name})

    def start_background(self) -> None:
        """`make dev`: deliver bus messages on a worker thread and fire schedules on a timer."""
        self.bus.start()
        self._schedule_next()

    def _schedule_next(self) -> None:
        def tick() -> None:
            self.publish_schedules()
            self._schedule_next()

        self._timer = threading.Timer(self.settings.scheduler_interval_seconds, tick)
        self._timer.daemon = True
        self._timer.start()

    def stop(self, drain_timeout: float = 10.0) -> dict[str, int]:
        """Stop the stack; what the bus could not deliver in time is archived as dead letters
        (`make replay` resends it). Returns how many messages were archived, by topic."""
        if self._timer is not None:
            self._timer.cancel()
        archived: dict[str, set[str]] = {}
        for subscription, message in self.bus.stop(drain_timeout):
            key = dead_letters.record(self.runtime.store, message, subscription, _Undelivered())
            archived.setdefault(message.topic, set()).add(key)
        close_meter(self.runtime)  # what the stopped deliveries and requests counted, before the warehouse closes
        self.runtime.warehouse.close()
        set_runtime(None)
        return {topic: len(records) for topic, records in archived.items()}


def post_to_wsgi(app: WsgiApp, headers: dict[str, str], body: bytes) -> int:
    """POST `body` to `/` of a WSGI app, as Eventarc's push reaches a function; returns the status code.
    The request a server would hand the app, without werkzeug's test client around it (which cost a
    third of a microsecond per event of a 500-event message; docs/performance.md)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    statuses: list[str] = []

    def start_response(status: str, _headers: object, _exc_info: object = None) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda _data: None

    answer = app(environ, start_response)
    try:
        for _chunk in answer:
            pass
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()
    return int(statuses[-1].split(" ", 1)[0])


def _mailbox_response(mailbox: DevMailbox, path: str) -> WResponse:
    """The dev mailbox: what the dev mailer "sent", newest first (only while the dev mailer is active)."""
    mails = mailbox.mails()
    if path.endswith(".json"):
        body = orjson.dumps([mail.model_dump(mode="json") for mail in mails])
        return WResponse(body, mimetype="application/json", headers={"Cache-Control": "no-store"})
    items = []
    for mail in mails:
        text = html.escape(mail.text)
        for link in mail.links:
            escaped = html.escape(link)
            text = text.replace(escaped, f'<a href="{escaped}">{escaped}</a>')
        items.append(
            f"<article><h2>{html.escape(mail.subject)}</h2>"
            f"<p>to {html.escape(mail.to)} · {mail.sent_at.isoformat()}</p><pre>{text}</pre></article>"
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>SegOps dev mailbox</title></head>'
        f"<body><h1>Dev mailbox ({len(mails)})</h1>{''.join(items) or '<p>No mail yet.</p>'}</body></html>"
    )
    return WResponse(page, mimetype="text/html", headers={"Cache-Control": "no-store"})
