"""The Kubernetes API server: HTTPS on 127.0.0.1, bearer tokens, one thread per connection.

    store = Store("state/cluster.db")
    server = ApiServer(store, state_dir="state", exec_handler=handler).start()
    server.write_kubeconfig("state/kubeconfig")      # trusts server's CA, carries its token
    ...
    server.stop()

TLS credentials (CA and server certificate) and the token live in `state_dir` (files 0600) and
are reused on restart. Every request needs `Authorization: Bearer <token>` (401 Status otherwise,
/version included) unless the server is built with `auth=False`. Requests are HTTP/1.1 with
keep-alive; watches stream chunked newline-delimited JSON; pod exec upgrades to WebSocket
(exec_ws.py). The REST semantics live in rest.py; this module is transport only.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import select
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from .errors import ApiError, internal, unauthorized
from .exec_ws import ExecHandler, ExecSession
from .kubeconfig import KubeconfigNames, write_kubeconfig
from .rest import ExecUpgrade, LogReader, LogStream, Request, Response, RestApi, WatchStream, status_response
from .store import Store
from .tls import TlsFiles, ensure_tls, write_private
from .websocket import accept_key

log = logging.getLogger(__name__)

DEFAULT_VERSION = "v1.31.4-eks-2d5f260"     # EKS 1.31, as the seed cluster reports it
MAX_BODY = 8 * 1024 * 1024
LOG_POLL_SECONDS = 0.3                      # how often a followed log looks for new lines


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minieks-apiserver"
    sys_version = ""
    timeout = 300                                   # idle keep-alive connections end after this
    server: "_HttpServer"

    def setup(self) -> None:
        self._broken = False
        try:   # headers and body go out as separate writes: never wait for a delayed ACK
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        ctx = self.server.ssl_context
        if ctx is not None:
            self.request.settimeout(10)
            try:
                self.request = ctx.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                self._broken = True
        self.server.track(self.request, True)
        super().setup()

    def handle(self) -> None:
        if not self._broken:
            super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.track(self.request, False)
        try:
            self.request.close()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("%s " + format, self.address_string(), *args)

    # every method goes through one dispatcher
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        api: ApiServer = self.server.api
        try:
            body = self._read_body()
            if not api.authorized(self.headers.get("Authorization")):
                raise unauthorized()
            req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            result = api.rest.handle(req)
        except ApiError as err:
            result = status_response(err)
            if err.code == 413:
                self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a bug must still answer as a Status
            log.exception("error serving %s %s", self.command, self.path)
            result = status_response(internal(str(exc)))
        if isinstance(result, WatchStream):
            self._stream_watch(result)
        elif isinstance(result, LogStream):
            self._stream_log(result)
        elif isinstance(result, ExecUpgrade):
            self._exec(result)
        else:
            self._respond(result)

    def _respond(self, resp: Response) -> None:
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Cache-Control", resp.headers.pop("Cache-Control", "no-cache, private"))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        body = b"" if self.command == "HEAD" else resp.body
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    # --- watch ----------------------------------------------------------------------------

    def _client_left(self) -> bool:
        """During a watch the client sends nothing: readable means it closed (or is closing)."""
        sock = self.request
        try:
            if getattr(sock, "pending", lambda: 0)():
                return True
            ready, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)

    def _write_chunk(self, data: bytes) -> bool:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            return True
        except OSError:
            return False

    def _stream_watch(self, ws: WatchStream) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ws.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        api: ApiServer = self.server.api
        if ws.error is not None:
            ok = self._write_chunk(json.dumps({"type": "ERROR", "object": ws.error}).encode() + b"\n")
            if ok:
                self._write_chunk(b"")
            return
        deadline = time.monotonic() + ws.timeout
        first = True
        alive = True
        try:
            while alive and not api.stopping and time.monotonic() < deadline:
                ev = ws.watch.get(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
                if ev is None:
                    if ws.watch.closed or self._client_left():
                        alive = False
                    continue
                line = json.dumps(ws.render(ev, first), separators=(",", ":")).encode() + b"\n"
                first = False
                alive = self._write_chunk(line)
            if alive:
                self._write_chunk(b"")
            else:
                self.close_connection = True
        finally:
            ws.watch.close()

    # --- kubectl logs -f ---------------------------------------------------------------------

    def _stream_log(self, stream: LogStream) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        api: ApiServer = self.server.api
        alive = not stream.first or self._write_chunk(stream.first.encode())
        deadline = time.monotonic() + stream.timeout
        while alive and not api.stopping and time.monotonic() < deadline:
            time.sleep(LOG_POLL_SECONDS)
            text = stream.read()
            if text is None:                     # the container is gone: the stream ends
                break
            alive = self._write_chunk(text.encode()) if text else not self._client_left()
        if alive:
            self._write_chunk(b"")
        else:
            self.close_connection = True

    # --- exec -----------------------------------------------------------------------------

    def _exec(self, up: ExecUpgrade) -> None:
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(up.key))
        self.send_header("Sec-WebSocket-Protocol", up.protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        self.request.settimeout(None)
        ExecSession(self.request, up.request, up.protocol, self.server.api.exec_handler).run()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: "ApiServer", ssl_context: ssl.SSLContext | None):
        self.api = api
        self.ssl_context = ssl_context
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ApiServer:
    """The API server for `store`.

    - `state_dir`: where ca.crt/ca.key/apiserver.crt/apiserver.key and `token` live (0600).
    - `port`: 0 picks a free one (see `.port`/`.url` after start()); only 127.0.0.1 is served.
    - `token`: the bearer token to accept (default: read or create `state_dir/token`);
      `auth=False` accepts every request. `tls=False` serves plain HTTP (kubectl then sends no
      token, so use it only with auth=False).
    - `version`: the gitVersion reported by /version: "v1.31.4-eks-..." reports minor "31+"
      (kubectl's dispatcher then runs kubectl 1.31); "v1.32.5" reports "32".
    - `exec_handler`: runs `kubectl exec` commands (see exec_ws.py); None refuses exec.
    - `log_handler(namespace, pod, container) -> reader`: `kubectl logs`; each call of the reader
      returns what the container wrote since the previous one (all of it first), None once it is
      gone; `-f` keeps calling it. None: every log is empty.
    """

    def __init__(self, store: Store, *, state_dir: str | os.PathLike[str], host: str = "127.0.0.1",
                 port: int = 0, token: str | None = None, auth: bool = True, tls: bool = True,
                 version: str = DEFAULT_VERSION, exec_handler: ExecHandler | None = None,
                 log_handler: Callable[[str, str, str], LogReader] | None = None,
                 clock: Callable[[], float] = time.time):
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the API server listens on 127.0.0.1 only")
        self.store = store
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.auth = auth
        self.token = token if token is not None else self._load_token()
        self.tls: TlsFiles | None = ensure_tls(self.state_dir) if tls else None
        self.exec_handler = exec_handler
        self._host, self._port = "127.0.0.1", port
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = False
        self.rest: RestApi = RestApi(store, version=version, exec_handler=exec_handler,
                                     log_handler=log_handler, clock=clock)

    def _load_token(self) -> str:
        path = self.state_dir / "token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        write_private(path, token.encode() + b"\n")
        return token

    # --- lifecycle ---

    def start(self) -> "ApiServer":
        ctx = self.tls.server_context() if self.tls else None
        self._httpd = _HttpServer((self._host, self._port), self, ctx)
        self._port = self._httpd.server_address[1]
        self.rest.server_address = f"{self._host}:{self._port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"kube-apiserver-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end watches and exec sessions, close connections."""
        if self._httpd is None:
            return
        self.stopping = True
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(5)
        self._httpd = None

    def __enter__(self) -> "ApiServer":
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- facts for clients ---

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self._host}:{self._port}"

    @property
    def ca_pem(self) -> bytes:
        return self.tls.ca_pem() if self.tls else b""

    def write_kubeconfig(self, path: str | os.PathLike[str], *, cluster: str = "minieks",
                         region: str = "ap-northeast-2", user: str = "minieks-admin",
                         token: str | None = None) -> KubeconfigNames:
        """A kubeconfig (0600) for this server: its URL, CA and token (or `token`)."""
        return write_kubeconfig(path, server=self.url, ca_pem=self.ca_pem, token=token or self.token,
                                cluster=cluster, region=region, user=user)

    # --- used by the handler ---

    def authorized(self, header: str | None) -> bool:
        if not self.auth:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self.token.encode())

