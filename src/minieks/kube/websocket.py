"""A small server-side RFC 6455 framer: handshake key, frame encoding, incremental parsing.

Only what `kubectl exec` and the Python client's stream need: binary and text data frames (with
fragmentation), ping/pong and close. Client frames must be masked; server frames never are.
Sans-IO: the exec session (exec_ws.py) owns the socket.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The peer broke RFC 6455; close with `code`."""

    def __init__(self, message: str, code: int = 1002):
        super().__init__(message)
        self.code = code


def accept_key(client_key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key."""
    digest = hashlib.sha1((client_key.strip() + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def encode_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """One unmasked server frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())


@dataclass(frozen=True)
class Message:
    """A complete data message (TEXT/BINARY, defragmented) or a control frame."""

    opcode: int
    payload: bytes

    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]


class FrameParser:
    """Feed bytes from the client, get complete Messages out."""

    def __init__(self, require_mask: bool = True):
        self._buf = bytearray()
        self._frag_op: int | None = None
        self._frag = bytearray()
        self._require_mask = require_mask

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return out
            fin, opcode, payload = frame
            if opcode >= 0x8:
                if not fin or len(payload) > 125:
                    raise ProtocolError("bad control frame")
                out.append(Message(opcode, payload))
            elif opcode == OP_CONT:
                if self._frag_op is None:
                    raise ProtocolError("continuation without a message")
                self._frag += payload
                if len(self._frag) > MAX_MESSAGE:
                    raise ProtocolError("message too big", 1009)
                if fin:
                    out.append(Message(self._frag_op, bytes(self._frag)))
                    self._frag_op, self._frag = None, bytearray()
            elif opcode in (OP_TEXT, OP_BINARY):
                if self._frag_op is not None:
                    raise ProtocolError("new message inside a fragmented one")
                if fin:
                    out.append(Message(opcode, payload))
                else:
                    self._frag_op, self._frag = opcode, bytearray(payload)
            else:
                raise ProtocolError(f"unknown opcode {opcode}")

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        fin = bool(buf[0] & 0x80)
        if buf[0] & 0x70:
            raise ProtocolError("reserved bits set")
        opcode = buf[0] & 0x0F
        masked = bool(buf[1] & 0x80)
        length = buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        if length > MAX_MESSAGE:
            raise ProtocolError("frame too big", 1009)
        if self._require_mask and not masked:
            raise ProtocolError("client frames must be masked")
        mask = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            mask = bytes(buf[pos:pos + 4])
            pos += 4
        if len(buf) < pos + length:
            return None
        payload = bytes(buf[pos:pos + length])
        del buf[:pos + length]
        if masked:
            payload = _unmask(payload, mask)
        return fin, opcode, payload


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
