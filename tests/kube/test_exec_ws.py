"""Exec over WebSocket on the wire: channels, TTY, stdin close, v4, ping/pong, the RFC 6455 framer."""

from __future__ import annotations

import json
import ssl
import struct
from urllib.parse import urlencode

import pytest

from minieks.kube import ApiServer, Store
from minieks.kube.websocket import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, FrameParser, ProtocolError, \
    accept_key, encode_frame

from .helpers import Kubectl, running_pod

websocket = pytest.importorskip("websocket")


@pytest.fixture(scope="module")
def pod(cluster: tuple[Store, ApiServer, Kubectl]) -> ApiServer:
    cluster[0].create("pods", running_pod("ws-pod", "ws", "192.168.1.200"))
    return cluster[1]


def _connect(server: ApiServer, command: list[str], protocol: str = "v5.channel.k8s.io", **flags: bool):
    query = [("command", c) for c in command] + [(k, "true" if v else "false") for k, v in flags.items()]
    url = f"wss://127.0.0.1:{server.port}/api/v1/namespaces/default/pods/ws-pod/exec?{urlencode(query)}"
    assert server.tls is not None
    return websocket.create_connection(url, subprotocols=[protocol], header=[f"Authorization: Bearer {server.token}"],
                                       sslopt={"ca_certs": str(server.tls.ca_cert), "cert_reqs": ssl.CERT_REQUIRED},
                                       timeout=10)


def _collect(ws) -> tuple[dict[int, bytes], list[int], int | None]:
    """Channel payloads, opcodes seen, and the server's close code."""
    out: dict[int, bytes] = {}
    opcodes = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        opcodes.append(opcode)
        if opcode == OP_CLOSE:
            return out, opcodes, struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        if opcode == OP_BINARY and data:
            out[data[0]] = out.get(data[0], b"") + data[1:]


def test_exit_code_status_and_close(pod: ApiServer) -> None:
    ws = _connect(pod, ["sh", "-c", "echo out; echo err >&2; exit 3"], stdout=True, stderr=True)
    assert ws.subprotocol == "v5.channel.k8s.io"
    out, opcodes, code = _collect(ws)
    assert (out[1], out[2], code) == (b"out\n", b"err\n", 1000)
    assert OP_TEXT not in opcodes
    status = json.loads(out[3])
    assert status == {"metadata": {}, "status": "Failure",
                      "message": "command terminated with non-zero exit code: error executing command "
                                 "[sh -c echo out; echo err >&2; exit 3], exit code 3",
                      "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    ws.close()


def test_tty_uses_a_terminal(pod: ApiServer) -> None:
    ws = _connect(pod, ["sh", "-c", "stty size; echo a; echo b"], stdin=True, stdout=True, tty=True)
    ws.send_binary(b'\x04{"Width":120,"Height":40}\n')
    out, _, code = _collect(ws)
    assert out[1] == b"40 120\r\na\r\nb\r\n" and json.loads(out[3])["status"] == "Success" and code == 1000
    ws.close()


def test_stdin_and_close_signal(pod: ApiServer) -> None:
    ws = _connect(pod, ["cat"], stdin=True, stdout=True, stderr=True)
    ws.send_binary(b"\x00hello stdin\nline2\n")
    ws.send_binary(b"\xff\x00")
    out, _, _ = _collect(ws)
    assert out[1] == b"hello stdin\nline2\n" and json.loads(out[3]) == {"metadata": {}, "status": "Success"}
    ws.close()


def test_v4_and_ping(pod: ApiServer) -> None:
    ws = _connect(pod, ["sh", "-c", "sleep 0.3; echo late"], protocol="v4.channel.k8s.io", stdout=True)
    assert ws.subprotocol == "v4.channel.k8s.io"
    ws.ping(b"beat")
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, data) == (0xA, b"beat")
    out, _, _ = _collect(ws)
    assert out[1] == b"late\n"
    ws.close()


def test_refused_handshakes(pod: ApiServer) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        _connect(pod, ["true"], protocol="channel.k8s.io", stdout=True)
    assert exc.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as exc:
        _connect(pod, [], stdout=True)
    assert exc.value.status_code == 400


def test_missing_command_reports_a_failure(pod: ApiServer) -> None:
    ws = _connect(pod, ["/nonexistent/tool"], stdout=True)
    out, _, code = _collect(ws)
    status = json.loads(out[3])
    assert (status["status"], status["reason"], code) == ("Failure", "InternalError", 1000)
    assert 'exec: "/nonexistent/tool": No such file or directory' in status["message"]
    ws.close()


def _masked(opcode: int, payload: bytes, fin: bool = True, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_framer() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="    # RFC 6455 §1.3
    assert encode_frame(OP_BINARY, b"\x01hi") == b"\x82\x03\x01hi"
    assert encode_frame(OP_BINARY, b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert encode_frame(OP_BINARY, b"x" * 70000)[:2] == b"\x82\x7f"
    parser = FrameParser()
    stream = (_masked(OP_BINARY, b"\x00abc", fin=False) + _masked(OP_PING, b"p") + _masked(0, b"def") +
              _masked(OP_BINARY, b"y" * 300) + _masked(OP_CLOSE, b"\x03\xe8"))
    msgs = []
    for i in range(0, len(stream), 7):          # byte-dribbled input
        msgs += parser.feed(stream[i:i + 7])
    assert [(m.opcode, m.payload) for m in msgs[:3]] == [(OP_PING, b"p"), (OP_BINARY, b"\x00abcdef"),
                                                        (OP_BINARY, b"y" * 300)]
    assert msgs[3].close_code() == 1000
    with pytest.raises(ProtocolError):
        FrameParser().feed(b"\x82\x01x")          # unmasked client frame
