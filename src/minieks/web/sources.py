"""Where the board's facts come from, beyond the Kubernetes store: a node's ipamd introspection
(`GET /v1/enis` on 127.0.0.1:61679 *inside* the node's namespace, as `curl` on an EKS node reads it)
and the settings that decide how to read it (cooldown period, bind address).

The connection is opened by a short-lived thread that enters the node's namespace only for the
`connect()`; the socket stays in that namespace and is used from the caller's thread afterwards.
No thread of the board's HTTP server ever changes namespace.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Mapping

from minieks.fabric import netns
from minieks.ipamd.config import DEFAULT_INTROSPECTION_ADDRESS, env_cooldown
from minieks.ipamd.introspection import parse_bind_address

FETCH_TIMEOUT = 2.0


class SourceError(RuntimeError):
    """ipamd could not be read (not started yet, restarting, introspection disabled)."""


def cooldown_seconds(env: Mapping[str, str]) -> float:
    """IP_COOLDOWN_PERIOD as the node's ipamd reads it (30 s unless the aws-node env says else)."""
    return float(env_cooldown(env))


def introspection_target(env: Mapping[str, str]) -> tuple[str, int]:
    """Host and port the node's ipamd serves introspection on; SourceError when it serves none."""
    if env.get("DISABLE_INTROSPECTION", "").lower() == "true":
        raise SourceError("introspection is disabled (DISABLE_INTROSPECTION=true)")
    bind = parse_bind_address(env.get("INTROSPECTION_BIND_ADDRESS") or DEFAULT_INTROSPECTION_ADDRESS)
    if isinstance(bind, str):
        raise SourceError(f"introspection listens on a unix socket ({bind})")
    host, port = bind
    return (host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"), port


def connect_inside(namespace: str, host: str, port: int, timeout: float = FETCH_TIMEOUT) -> socket.socket:
    """A TCP connection made from inside `namespace` (so 127.0.0.1 is the node's loopback)."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            with netns.entered(namespace):
                result["sock"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as err:  # handed to the caller below
            result["error"] = err

    worker = threading.Thread(target=run, name=f"board-connect {namespace}", daemon=True)
    worker.start()
    worker.join(timeout + 1)
    if "sock" in result:
        return result["sock"]  # type: ignore[return-value]
    raise SourceError(f"cannot reach ipamd in {namespace} at {host}:{port}: {result.get('error', 'timed out')}")


def fetch_enis(namespace: str, env: Mapping[str, str], timeout: float = FETCH_TIMEOUT) -> dict:
    """The node's `/v1/enis` document (network card → ENIInfos)."""
    host, port = introspection_target(env)
    sock = connect_inside(namespace, host, port, timeout)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock  # http.client uses a socket it is given instead of connecting
    try:
        conn.request("GET", "/v1/enis")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SourceError(f"ipamd in {namespace} answered {response.status}")
        return json.loads(body)
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise SourceError(f"reading ipamd in {namespace}: {err}") from err
    finally:
        conn.close()
