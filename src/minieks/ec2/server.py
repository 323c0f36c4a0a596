"""The EC2 Query API over HTTP/1.1 on 127.0.0.1: what boto3 and the `aws` CLI talk to.

Requests are decoded by the codec (query.py) into `Ec2Service.call(action, params)`; its output
or Ec2Error goes back as EC2's XML. Signatures are not checked (any credentials work) and the
region is irrelevant. A small admin surface under `/_minieks/` injects faults into the service
(`service.faults`) and answers health checks. The stdlib threading server is enough here: one
thread per keep-alive connection, responses written in one send with TCP_NODELAY.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl

from minieks.ec2.errors import Ec2Error
from minieks.ec2.query import QueryCodec, default_codec, encode_error

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_minieks/"
FAULT_KEYS = ("action", "code", "message", "count", "probability", "delay", "status")
XML_TYPE = "text/xml;charset=UTF-8"
JSON_TYPE = "application/json"


class Service(Protocol):
    """What the server needs from the emulator core (minieks.ec2.service.Ec2Service)."""

    faults: Any

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any] | None: ...


def _plain(fault: Any) -> Any:
    """A fault record as JSON-able data (the core's Fault has as_dict())."""
    return fault.as_dict() if hasattr(fault, "as_dict") else fault


class _Clock:
    """The HTTP Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def date(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._text, self._second = formatdate(now, usegmt=True), now
        return self._text


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AmazonEC2"
    timeout = 300  # idle keep-alive connections are dropped after this many seconds
    server: "Ec2HttpServer"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # -- dispatch ---------------------------------------------------------------------------

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body()
        if path.startswith(ADMIN_PREFIX):
            return self._admin("POST", path, body)
        pairs = parse_qsl(query, keep_blank_values=True) if query else []
        if body:
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        self._ec2(pairs)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith(ADMIN_PREFIX):
            return self._admin("GET", path, b"")
        self._ec2(parse_qsl(query, keep_blank_values=True))

    def do_DELETE(self) -> None:
        path = self.path.partition("?")[0]
        body = self._body()
        if path.startswith(ADMIN_PREFIX):
            return self._admin("DELETE", path, body)
        self._send(405, b"", JSON_TYPE)

    # -- EC2 ----------------------------------------------------------------------------------

    def _ec2(self, pairs: list[tuple[str, str]]) -> None:
        request_id = str(uuid.uuid4())
        codec = self.server.codec
        try:
            action, params = codec.decode(pairs)
            output = self.server.service.call(action, params)
            status, body = 200, codec.encode(action, output, request_id)
        except Ec2Error as error:
            status, body = error.status, encode_error(error, request_id)
        except Exception:  # a bug in the emulator must still answer as EC2 would
            log.exception("EC2 request failed")
            status = 500
            body = encode_error(Ec2Error("InternalError", "An internal error has occurred", 500),
                                request_id)
        self._send(status, body, XML_TYPE, request_id)

    # -- admin --------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> None:
        route = path[len(ADMIN_PREFIX):].rstrip("/")
        if route == "health" and method == "GET":
            return self._json(200, {"status": "ok"})
        if route.startswith("metadata/") and method == "GET":
            return self._metadata(route[len("metadata/"):])
        if route != "faults":
            return self._json(404, {"error": f"no such admin path {path}"})
        faults = self.server.service.faults
        if method == "DELETE":
            faults.clear()
            return self._json(200, {"cleared": True})
        if method == "GET" and hasattr(faults, "list"):
            return self._json(200, {"faults": [_plain(f) for f in faults.list()]})
        if method != "POST":
            return self._json(405, {"error": f"{method} not allowed on {path}"})
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            unknown = set(spec) - set(FAULT_KEYS)
            if unknown:
                raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
            if not spec.get("action"):
                raise ValueError("'action' is required (an EC2 action name, or '*')")
            added = faults.add(**spec)
        except (ValueError, TypeError) as error:
            return self._json(400, {"error": str(error)})
        self._json(200, {"added": _plain(added) if added is not None else spec})

    def _metadata(self, instance_id: str) -> None:
        """The instance's IMDS view (no EC2 call is counted or throttled)."""
        from minieks.ec2.metadata import instance_metadata
        try:
            return self._json(200, instance_metadata(self.server.service, instance_id))
        except Ec2Error as error:
            return self._json(404, {"error": error.message})

    # -- plumbing -----------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), JSON_TYPE)

    def _send(self, status: int, body: bytes, content_type: str, request_id: str = "") -> None:
        """Status line, headers and body in one write: no Nagle stall on keep-alive."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}", f"Date: {self.server.clock.date()}",
                "Server: AmazonEC2"]
        if request_id:
            head.append(f"x-amzn-RequestId: {request_id}")
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.log_request(status, len(body))


class Ec2HttpServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server in front of one Ec2Service."""

    daemon_threads = True
    block_on_close = False  # keep-alive clients may hold connections; close() cuts them
    allow_reuse_address = True

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0,
                 codec: QueryCodec | None = None):
        self.service = service
        self.codec = codec or default_codec()
        self.clock = _Clock()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._serving = threading.Event()
        self._closed = False
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def serve_forever(self, poll_interval: float = 0.1) -> None:
        self._serving.set()
        super().serve_forever(poll_interval)

    def shutdown(self) -> None:
        """Stop serve_forever (a no-op if it never ran, where the stdlib would wait forever)."""
        if self._serving.is_set():
            super().shutdown()

    def close(self) -> None:
        """Stop serving, close the listening socket and cut open keep-alive connections."""
        if self._closed:
            return
        self._closed = True
        self.shutdown()
        self.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "Ec2HttpServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_server(service: Service, host: str = "127.0.0.1", port: int = 0) -> Ec2HttpServer:
    """A bound (not yet serving) EC2 endpoint; port=0 picks a free port (see `.port`)."""
    return Ec2HttpServer(service, host, port)


def start_in_thread(service: Service, port: int = 0, host: str = "127.0.0.1") -> Ec2HttpServer:
    """A server already serving on a daemon thread; stop it with `.close()`."""
    server = make_server(service, host, port)
    server.codec.warm()
    thread = threading.Thread(target=server.serve_forever, name=f"ec2-http-{server.port}",
                              daemon=True)
    thread.start()
    server._serving.wait(5)
    return server
