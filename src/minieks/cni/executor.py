"""A node's warm CNI executor: runs `aws-cni` calls handed over by the thin executable (thin.py).

Started in the node's network namespace (`ip netns exec <node> python -m minieks.cni.executor
--socket PATH`), so every thread it runs is in the node's namespace, exactly where the plugin
would run; it preloads pyroute2 and grpc once and then runs plugin.run(env, stdin) per request.
The socket is 0600 and lives under the lab's /run/mek-<lab> directory.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import signal
import socket
import threading

from minieks.cni import plugin
from minieks.cni.thin import _receive, _send


def _serve_one(conn: socket.socket) -> None:
    with conn:
        try:
            request = marshal.loads(_receive(conn))
            code, out = plugin.run(request["env"], request["stdin"])
        except Exception as err:  # noqa: BLE001 - answered as the plugin's internal error
            code, out = 999, json.dumps({"code": 999, "msg": f"aws-cni executor: {err}"})
        _send(conn, marshal.dumps({"code": code, "stdout": out}))


def serve(path: str) -> None:
    import grpc  # noqa: F401  (warm: what a fresh plugin process spends its time importing)
    import pyroute2  # noqa: F401

    from minieks.cni import ipamd_client  # noqa: F401
    from minieks.netsetup import pod_network  # noqa: F401

    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(64)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.settimeout(0.5)
    try:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    serve(parser.parse_args().socket)


if __name__ == "__main__":
    main()
