"""The board's HTTP server: the page, its two static files, and `/api/board` (the snapshot as JSON),
on 127.0.0.1 only. The page polls the snapshot once a second: plain requests survive a restarted
supervisor and need no connection bookkeeping on stop, unlike a stream.

Port 8080 by default (as `kubectl port-forward` to kube-ops-view is usually run); when it is taken,
any free port, and the URL says which.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from minieks.web.board import Board

log = logging.getLogger("minieks.board")

HOST = "127.0.0.1"      # never any other address: the board shows the whole cluster, without auth
DEFAULT_PORT = 8080
STATIC = Path(__file__).with_name("static")
FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/static/board.css": ("board.css", "text/css; charset=utf-8"),
         "/static/board.js": ("board.js", "text/javascript; charset=utf-8")}


class BoardServer:
    """Serves one Board; start() binds and returns self, stop() closes."""

    def __init__(self, board: Board, port: int = DEFAULT_PORT):
        self.board = board
        self.wanted_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_runtime(cls, runtime: Any, port: int = DEFAULT_PORT) -> BoardServer:
        return cls(Board(runtime), port)

    def start(self) -> BoardServer:
        handler = _handler(self.board)
        try:
            self._server = ThreadingHTTPServer((HOST, self.wanted_port), handler)
        except OSError as err:
            log.info("board: port %s is taken (%s); using a free one", self.wanted_port, err)
            self._server = ThreadingHTTPServer((HOST, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), name="board http",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}" if self._server else ""

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None


NOT_THE_API = b"this is the minieks cluster board, not the Kubernetes API; run: export KUBECONFIG=$(minieks kubeconfig)"


def _handler(board: Board) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"   # one request per connection: nothing lingers after stop()
        server_version = "minieks-board"
        sys_version = ""
        timeout = 10

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/api/board":
                try:
                    body = json.dumps(board.snapshot()).encode()
                    self._send(200, "application/json", body)
                except Exception as err:  # the page keeps its last picture and shows the error
                    log.exception("board snapshot failed")
                    self._send(500, "application/json", json.dumps({"error": str(err)}).encode())
            elif path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            elif path in FILES:
                name, ctype = FILES[path]
                self._send(200, ctype, (STATIC / name).read_bytes())
            elif path in ("/api", "/apis", "/version") or path.startswith(("/api/", "/apis/")):
                # kubectl without a kubeconfig asks localhost:8080, which is this board: say where to go
                # (kubectl shows a plain-text body of a 500 in its message; of a 404 it shows nothing)
                self._send(500, "text/plain; charset=utf-8", NOT_THE_API)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("board http: " + format, *args)

    return Handler
