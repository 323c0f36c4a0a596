"""Reading one node's ipamd from the root namespace: /v1/enis and /metrics over sockets opened
inside the node's network namespace, the tail of ipamd.log, and whether its gRPC socket exists."""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path

from minieks.explain.facts import IpamdFacts

INTROSPECTION_PORT = 61679
METRICS_PORT = 61678
TIMEOUT = 5.0
LOG_TAIL_BYTES = 512 * 1024


def node_http_get(namespace: str, port: int, path: str, timeout: float = TIMEOUT) -> str:
    """GET http://127.0.0.1:<port><path> as seen from inside the node's namespace."""
    from minieks.fabric import netns

    with netns.entered(namespace):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.sock = sock
    try:
        conn.request("GET", path, headers={"User-Agent": "minieks-explain"})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        if response.status != 200:
            raise OSError(f"HTTP {response.status} from 127.0.0.1:{port}{path}")
        return body
    finally:
        conn.close()


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> list[str]:
    """The last `limit` bytes of a log, as whole lines."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - limit, 0))
            data = f.read()
    except OSError:
        return []
    lines = data.decode(errors="replace").splitlines()
    return lines[1:] if size > limit else lines


def probe(namespace: str | None, log_path: Path | None, socket_path: str | None) -> IpamdFacts:
    facts = IpamdFacts(log_path=str(log_path or ""), socket_path=socket_path or "")
    if log_path is not None:
        facts.log_lines = log_tail(log_path)
    if socket_path:
        facts.socket_present = os.path.exists(socket_path)
    if not namespace:
        facts.unavailable = "the node's network namespace is not known (no lab.json entry)"
        return facts
    try:
        facts.enis = json.loads(node_http_get(namespace, INTROSPECTION_PORT, "/v1/enis"))
    except PermissionError as err:
        facts.unavailable = f"cannot enter the node's namespace {namespace}: {err} (run as root)"
        return facts
    except FileNotFoundError:
        facts.unavailable = f"the node's namespace {namespace} does not exist"
        return facts
    except (OSError, ValueError) as err:
        facts.enis_error = str(err) or type(err).__name__
    try:
        facts.metrics = node_http_get(namespace, METRICS_PORT, "/metrics")
    except OSError as err:
        facts.metrics_error = str(err) or type(err).__name__
    return facts
