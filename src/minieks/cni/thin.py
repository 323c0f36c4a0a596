"""The `aws-cni` executable's entry point: hand the call to the node's warm CNI executor if there
is one, else run the plugin in this process.

The CNI protocol is unchanged (kubelet execs `aws-cni` with CNI_* env, the net config on stdin, the
result or error on stdout, the exit code); what changes is where the work runs. A fresh Python
process spends ~200 ms importing pyroute2 and grpc before it can do 10 ms of work, so each node has
an executor process (executor.py) that already has them loaded and runs the very same plugin code
(plugin.run) in the node's namespace. This module imports only builtins and os/sys (marshal on the wire, the C _socket module).
"""

from __future__ import annotations

import _socket  # the C module: `socket` pulls in enum and selectors, a third of this process's start-up
import marshal
import os
import sys

ENV_EXECUTOR = "MINIEKS_CNI_EXECUTOR"


def _send(sock, data: bytes) -> None:
    sock.sendall(len(data).to_bytes(4, "big") + data)


def _receive(sock) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise ConnectionError("the CNI executor closed the connection")
        head += chunk
    size = int.from_bytes(head, "big")
    body = bytearray()
    while len(body) < size:
        chunk = sock.recv(min(65536, size - len(body)))
        if not chunk:
            raise ConnectionError("the CNI executor closed the connection")
        body += chunk
    return bytes(body)


def delegate(path: str, env: dict[str, str], stdin: bytes, timeout: float = 120) -> tuple[int, str]:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        _send(sock, marshal.dumps({"env": env, "stdin": stdin}))      # builtin: nothing to import
        answer = marshal.loads(_receive(sock))
    finally:
        sock.close()
    return int(answer["code"]), answer["stdout"]


def main() -> int:
    env = dict(os.environ)
    path = env.get(ENV_EXECUTOR)
    if path and os.path.exists(path):
        stdin = b"" if env.get("CNI_COMMAND") == "VERSION" else sys.stdin.buffer.read()
        try:
            code, out = delegate(path, env, stdin)
        except (OSError, ValueError, KeyError):
            code, out = None, ""
        if code is not None:
            sys.stdout.write(out)
            sys.stdout.flush()
            return code
        from minieks.cni import plugin          # the executor is gone: do the work here
        code, out = plugin.run(env, stdin)
        sys.stdout.write(out)
        sys.stdout.flush()
        return code
    from minieks.cni.plugin import main as run_here
    return run_here()


if __name__ == "__main__":
    sys.exit(main())
