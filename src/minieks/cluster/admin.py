"""The supervisor's admin endpoint: node groups, as `eksctl create/delete nodegroup` manage them.

Kubernetes has no API for machines, and EKS's own is out of scope, so the supervisor offers a small
JSON API on 127.0.0.1, guarded by the cluster's bearer token: GET/POST /nodegroups,
DELETE /nodegroups/<name> (cordon, drain, terminate). `minieks nodegroup ...` is its client.
"""

from __future__ import annotations

import hmac
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import ValidationError

from minieks.cluster.spec import NodeGroupSpec


def _handler(runtime, token: str, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:
            pass

        def _reply(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given, f"Bearer {token}"):
                return True
            self._reply(401, {"error": "Unauthorized"})
            return False

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/nodegroups":
                return self._reply(404, {"error": f"no such path {self.path}"})
            groups = []
            for g in runtime.spec.node_groups:
                nodes = sorted(k.node_name for k in runtime.kubelets.values() if k.nodegroup == g.name)
                groups.append({**g.model_dump(by_alias=True), "nodes": nodes})
            self._reply(200, {"nodegroups": groups})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/nodegroups":
                return self._reply(404, {"error": f"no such path {self.path}"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                group = NodeGroupSpec.model_validate(body)
                with lock:
                    nodes = runtime.add_node_group(group)
            except (ValueError, ValidationError) as err:
                return self._reply(400, {"error": str(err)})
            self._reply(201, {"nodegroup": group.name, "nodes": nodes})

        def do_DELETE(self) -> None:
            if not self._authorized():
                return
            prefix = "/nodegroups/"
            if not self.path.startswith(prefix):
                return self._reply(404, {"error": f"no such path {self.path}"})
            try:
                with lock:
                    nodes = runtime.delete_node_group(self.path[len(prefix):])
            except ValueError as err:
                return self._reply(404, {"error": str(err)})
            self._reply(200, {"deleted": nodes})
    return Handler


class AdminServer:
    def __init__(self, runtime, token: str, port: int = 0):
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(runtime, token, threading.Lock()))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="minieks-admin")

    def start(self) -> AdminServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def call(url: str, token: str, method: str, path: str, body: dict | None = None, timeout: float = 600) -> dict:
    """The client side: returns the JSON answer, raises RuntimeError with the server's error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        try:
            message = json.load(err).get("error", err.reason)
        except ValueError:
            message = err.reason
        raise RuntimeError(message) from None
