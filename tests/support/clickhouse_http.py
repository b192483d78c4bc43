"""A ClickHouse HTTP-interface server that executes every statement on chDB.

No ClickHouse server binary is obtainable here, so `clickhouse-connect` is tested against this:
the protocol (query text in `query=` and/or the body, `param_<name>` bound parameters, the
`database` parameter, settings as URL parameters, compressed chunked `Native` inserts, results
rendered in the format the client asks for, the request limits: a field over 128 KiB, more than
1,000 fields, a URI over 1 MiB) is real; the SQL engine is ClickHouse's own, in-process.

Custom settings (`SQL_*`, accepted by a server whose `custom_settings_prefixes` is `SQL_`, as in
ClickHouse's default config) are recorded in `.requests` but not applied: chDB knows no custom
settings, and has no row policies that would read them.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import shutil
import socket
import tempfile
import threading
import uuid
import zlib
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import lz4.frame
import orjson
from segops.warehouse.chdb_backend import _Lane, _session

# URL parameters that steer the HTTP layer rather than being ClickHouse settings for the statement.
_TRANSPORT = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "user",
    "password",
    "client_protocol_version",
    # settings ClickHouse's HTTP handler consumes itself (they are unknown to the SQL layer)
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "enable_http_compression",
    "http_zlib_compression_level",
    "cancel_http_readonly_queries_on_client_close",
    "buffer_size",
}
# ClickHouse's HTTP handler refuses, before anything runs, a request with a field (a URL parameter,
# or a form field of a multipart body: the query, a bound parameter, a setting) longer than
# `http_max_field_value_size` (128 KiB by default since 23.6; it takes one byte more: "Field value too
# long"), or with more than `http_max_fields` fields (1,000 by default: "Too many form fields").
HTTP_MAX_FIELD_VALUE_SIZE = 128 * 1024
HTTP_MAX_FIELDS = 1000
# The longest URI it reads (`http_max_uri_size`, 1 MiB): bound parameters travel in the URL when the
# query is too long for a form field. (http.server alone stops at 64 KiB.)
HTTP_MAX_URI_SIZE = 1024 * 1024
_INSERT_NATIVE = re.compile(r"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+Native\s*$", re.IGNORECASE | re.DOTALL)
_INSERT_PREFIX = re.compile(rb"^\s*INSERT\s", re.IGNORECASE)
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+(?P<fmt>[A-Za-z0-9]+)\s*;?\s*$", re.IGNORECASE)
_NO_RESULT = re.compile(r"^\s*(INSERT|CREATE|ALTER|DROP|TRUNCATE|OPTIMIZE|SYSTEM|RENAME|SET|USE)\b", re.IGNORECASE)
_SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
CUSTOM_SETTINGS_PREFIX = "SQL_"


class ClickHouseError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _lz4_frames(data: bytes) -> bytes:
    # clickhouse-connect compresses every Native block as its own LZ4 frame.
    out = bytearray()
    while data:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out += decompressor.decompress(data)
        if not decompressor.eof:
            raise ClickHouseError(33, "truncated LZ4 frame")
        data = decompressor.unused_data
    return bytes(out)


def _zstd_frames(data: bytes) -> bytes:
    from backports import zstd

    return bytes(zstd.decompress(data))


def _decompress(data: bytes, encoding: str) -> bytes:
    decoders: dict[str, Callable[[bytes], bytes]] = {
        "": lambda b: b,
        "identity": lambda b: b,
        "lz4": _lz4_frames,
        "zstd": _zstd_frames,
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
    }
    if encoding not in decoders:
        raise ClickHouseError(1, f"unsupported Content-Encoding {encoding}")
    return decoders[encoding](data)


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def _split_insert(query: str, body: bytes) -> tuple[str, bytes]:
    """An insert statement travels either in `query=` or as the body's first line, before the data."""
    if query.strip() or not _INSERT_PREFIX.match(body[:16]):
        return query, body
    line_end = body.find(b"\n")
    if line_end < 0:
        return body.decode(), b""
    return body[:line_end].decode(), body[line_end + 1 :]


class ChdbHttpServer:
    """`with ChdbHttpServer(chdb_path) as server: server.url` — bound to 127.0.0.1 on a free port."""

    def __init__(self, chdb_path: Path) -> None:
        self._chdb = _session(chdb_path)  # the process's chDB sessions (one data directory: chDB's rule)
        self._spool = Path(tempfile.mkdtemp(prefix="chdb-http-"))
        self.requests: list[dict[str, Any]] = []
        # Open client connections (HTTP/1.1 keep-alive): `stop` cuts them too, as a dead server would.
        self._connections: set[socket.socket] = set()
        # The summary of the statement the current handler thread ran last.
        self._summary = threading.local()
        self._refusals = 0
        self._refusals_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="chdb-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ChdbHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        shutil.rmtree(self._spool, ignore_errors=True)

    def __enter__(self) -> ChdbHttpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def refuse_inserts(self, count: int) -> None:
        """Answer the next `count` INSERTs with a server error, as a ClickHouse that cannot write
        (read-only after losing its Keeper, disk full, restarting) does; reads keep working."""
        with self._refusals_lock:
            self._refusals = count

    @property
    def refusals_left(self) -> int:
        with self._refusals_lock:
            return self._refusals

    def _refuses(self, statement: str) -> bool:
        with self._refusals_lock:
            if self._refusals and statement.lstrip().upper().startswith("INSERT"):
                self._refusals -= 1
                return True
            return False

    # -- statement execution ------------------------------------------------------------------

    def execute(self, params: dict[str, str], body: bytes) -> tuple[bytes, str | None]:
        """Run one request; returns the rendered result and its format (None: a statement without a
        result, for which a server sends no `X-ClickHouse-Format`, so clients read its summary)."""
        self._summary.value = {"read_rows": "0", "written_rows": "0"}
        database = params.get("database") or "default"
        bound = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v
            for k, v in params.items()
            if k not in _TRANSPORT
            and not k.startswith("param_")
            and not k.startswith(CUSTOM_SETTINGS_PREFIX)
            and _SETTING_NAME.match(k)
        }
        query, body = _split_insert(params.get("query", ""), body)
        insert = _INSERT_NATIVE.match(query)
        if insert:
            return self._insert_native(database, insert.group("target"), body, settings), None
        sql = "\n".join(part for part in (query, body.decode()) if part.strip())
        if not sql.strip():
            raise ClickHouseError(62, "Empty query")
        fmt_match = _FORMAT_CLAUSE.search(sql)
        fmt = fmt_match.group("fmt") if fmt_match else params.get("default_format", "TabSeparated")
        if fmt_match:
            sql = sql[: fmt_match.start()]
        payload = self._run(database, sql, fmt, bound, settings)
        return payload, None if _NO_RESULT.match(sql) else fmt

    def _insert_native(self, database: str, target: str, data: bytes, settings: dict[str, str]) -> bytes:
        # The client streams Native blocks; ClickHouse's own reader parses them from a file.
        path = self._spool / f"insert-{uuid.uuid4().hex}.native"
        path.write_bytes(data)
        try:
            sql = f"INSERT INTO {target} SELECT * FROM file({{insert_path:String}}, Native)"
            self._run(database, sql, "TabSeparated", {"insert_path": str(path)}, settings)
        finally:
            path.unlink(missing_ok=True)
        return b""

    def _run(self, database: str, sql: str, fmt: str, bound: dict[str, str], settings: dict[str, str]) -> bytes:
        # Settings apply to this statement only, as URL settings do on a real server: set, run, reset.
        def statement(lane: _Lane) -> Any:
            session = lane.session
            try:
                for name, value in settings.items():
                    session.query(f"SET {name} = '{value.replace(chr(39), '')}'")
                lane.use(database)
                # Parameters arrive already in ClickHouse's text form; chDB takes them untouched.
                return session.query(sql, fmt, params=bound) if bound else session.query(sql, fmt)
            except Exception as exc:  # chDB raises RuntimeError carrying ClickHouse's "Code: N. DB::Exception"
                code = re.search(r"Code: (\d+)", str(exc))
                raise ClickHouseError(int(code.group(1)) if code else 1, str(exc)) from None
            finally:
                for name in settings:
                    session.query(f"SET {name} = DEFAULT")

        result = self._chdb.call(statement)
        # What a server puts in `X-ClickHouse-Summary`, from chDB's own statistics of the statement.
        self._summary.value = {
            "read_rows": str(result.storage_rows_read()),
            "read_bytes": str(result.storage_bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "elapsed_ns": str(round(result.elapsed() * 1e9)),
        }
        return bytes(result.bytes())

    # -- HTTP -----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server._connections.add(self.connection)

            def finish(self) -> None:
                server._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: pytest output stays readable."""

            def handle_one_request(self) -> None:
                """http.server's, with ClickHouse's URI limit instead of its own 64 KiB."""
                try:
                    self.raw_requestline = self.rfile.readline(HTTP_MAX_URI_SIZE + 64)
                    if len(self.raw_requestline) > HTTP_MAX_URI_SIZE + 32:  # the method and version around it
                        self.send_error(414, "URI Too Long")
                        return
                    if not self.raw_requestline:
                        self.close_connection = True
                        return
                    if not self.parse_request():
                        return
                    handler = getattr(self, f"do_{self.command}", None)
                    if handler is None:
                        self.send_error(501, f"Unsupported method ({self.command!r})")
                        return
                    handler()
                    self.wfile.flush()
                except TimeoutError:
                    self.close_connection = True

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    raw = b"".join(chunks)
                else:
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return _decompress(raw, self.headers.get("Content-Encoding", "").lower())

            def _serve(self) -> None:
                split = urlsplit(self.path)
                params = dict(parse_qsl(split.query, keep_blank_values=True))
                body = self._body() if self.command == "POST" else b""
                if self.headers.get_content_type() == "multipart/form-data":
                    # Large bound parameters (> 4 KiB) travel as form fields, the query with them.
                    params.update(_form_fields(self.headers.get("Content-Type", ""), body))
                    body = b""
                server.requests.append(
                    {
                        "method": self.command,
                        "params": params,
                        "chunked": self.headers.get("Transfer-Encoding", "").lower() == "chunked",
                        "content_encoding": self.headers.get("Content-Encoding", ""),
                        "body_bytes": len(body),
                        "form": self.headers.get_content_type() == "multipart/form-data",
                        # the statement as the server reads it (an insert's data excluded)
                        "statement": _split_insert(params.get("query", ""), body[:65536])[0]
                        or body[:4096].decode(errors="replace"),
                    }
                )
                if split.path == "/ping":
                    self._reply(200, b"Ok.\n", {})
                    return
                long_field = next(
                    (name for name, value in params.items() if len(value.encode()) > HTTP_MAX_FIELD_VALUE_SIZE + 1),
                    None,
                )
                refusal = (
                    f"Too many form fields: {len(params)}"
                    if len(params) > HTTP_MAX_FIELDS
                    else None
                    if long_field is None
                    else f"Field value too long: {long_field}"
                )
                if refusal is not None:
                    message = f"Code: 1000. DB::Exception: {refusal}. (POCO_EXCEPTION)\n"
                    self._reply(400, message.encode(), {"X-ClickHouse-Exception-Code": "1000"})
                    return
                if server._refuses(server.requests[-1]["statement"]):
                    message = b"Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY)\n"
                    self._reply(500, message, {"X-ClickHouse-Exception-Code": "242"})
                    return
                try:
                    payload, fmt = server.execute(params, body)
                except ClickHouseError as exc:
                    message = f"Code: {exc.code}. DB::Exception: {exc}\n".encode()
                    self._reply(500, message, {"X-ClickHouse-Exception-Code": str(exc.code)})
                    return
                summary = orjson.dumps(server._summary.value).decode()
                headers = {"X-ClickHouse-Summary": summary} | ({} if fmt is None else {"X-ClickHouse-Format": fmt})
                self._reply(200, payload, headers)

            def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-ClickHouse-Server-Display-Name", "chdb-http-test")
                self.send_header("X-ClickHouse-Query-Id", uuid.uuid4().hex)
                self.send_header("X-ClickHouse-Timezone", "UTC")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

        return Handler
