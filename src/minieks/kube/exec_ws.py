"""`kubectl exec` over WebSocket (v5.channel.k8s.io / v4.channel.k8s.io), server side.

The API server upgrades the connection, then an ExecSession pumps bytes between the WebSocket
and a process: channel 0 stdin, 1 stdout, 2 stderr, 3 one final Status, 4 resize (TTY), 255
close-stdin (v5). It ends with a close frame 1000 as kubectl requires (kubectl-wire.md §7.3).

What runs is decided by the server's exec handler:

    exec_handler(namespace, pod_name, container, argv, tty) -> argv | Popen-like

- return a list of strings: the session starts it (pipes, or a pseudo-terminal when `tty`,
  which also gives the `\\r\\n` line endings a real TTY has); the lab returns
  `["ip", "netns", "exec", <pod netns>, *argv]`;
- or return an already started `subprocess.Popen`-like object with `stdin`/`stdout`/`stderr`
  file objects (or None), `poll()`, `wait()`, `kill()` and `returncode`;
- or raise ApiError to refuse (its message reaches the user as the exec error).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import ApiError
from .websocket import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, FrameParser, ProtocolError, close_frame, encode_frame

ExecHandler = Callable[[str, str, str, list[str], bool], Any]
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
READ_SIZE = 32 * 1024
# kubectl starts reading the WebSocket before it has registered its stdout/stderr streams and
# discards frames for streams it does not know yet ("Unknown stream id 1"); a real cluster's exec
# path (kubelet, runtime) is never this fast, so hold the first frame back a little.
SETTLE_SECONDS = 0.05


@dataclass(frozen=True)
class ExecRequest:
    namespace: str
    pod: str
    container: str
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def choose_protocol(offered: str | None) -> str | None:
    """The first subprotocol the client offers that we speak."""
    for proto in (p.strip() for p in (offered or "").split(",")):
        if proto in PROTOCOLS:
            return proto
    return None


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(command: Sequence[str], code: int) -> dict[str, Any]:
    """The channel-3 Status kubectl turns into `command terminated with exit code N` and exit N."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure_status(message: str, reason: str = "InternalError", code: int = 500) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason,
            "details": {"causes": [{"message": message}]}, "code": code}


class _Process:
    """The running command: fds to read (channel → fd), an fd to write stdin to."""

    def __init__(self, req: ExecRequest, target: Any, size: tuple[int, int] | None = None):
        self.req = req
        self.size = size
        self.master: int | None = None
        self.outputs: dict[int, int] = {}
        self.stdin_fd: int | None = None
        if isinstance(target, (list, tuple)):
            self.proc = self._spawn([str(a) for a in target])
        else:
            self.proc = target
            for chan, stream in ((STDOUT, getattr(target, "stdout", None)), (STDERR, getattr(target, "stderr", None))):
                if stream is not None:
                    self.outputs[chan] = stream.fileno()
            stdin = getattr(target, "stdin", None)
            self.stdin_fd = stdin.fileno() if stdin is not None else None
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        req = self.req
        if req.tty:
            master, slave = pty.openpty()
            self.master = master
            if self.size:
                self.resize(*self.size)

            def controlling_tty() -> None:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            try:
                proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                        preexec_fn=controlling_tty, close_fds=True)
            finally:
                os.close(slave)
            self.outputs[STDOUT] = master
            self.stdin_fd = os.dup(master) if req.stdin else None
            return proc
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if req.stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE if req.stdout else subprocess.DEVNULL,
                                stderr=subprocess.PIPE if req.stderr else subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
        if proc.stdout is not None:
            self.outputs[STDOUT] = proc.stdout.fileno()
        if proc.stderr is not None:
            self.outputs[STDERR] = proc.stderr.fileno()
        self.stdin_fd = proc.stdin.fileno() if proc.stdin is not None else None
        return proc

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and width > 0 and height > 0:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        elif self.master is None and hasattr(getattr(self, "proc", None), "resize"):
            self.proc.resize(width, height)

    def close_stdin(self) -> None:
        if self.stdin_fd is None:
            return
        fd, self.stdin_fd = self.stdin_fd, None
        stdin = getattr(self.proc, "stdin", None)
        try:
            if stdin is not None and stdin.fileno() == fd:
                stdin.close()
            else:
                os.close(fd)
        except OSError:
            pass
        if self.master is not None:
            # a terminal has no EOF of its own: send ^D so line-reading programs see it
            try:
                os.write(self.master, b"\x04")
            except OSError:
                pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (OSError, AttributeError):
                try:
                    self.proc.kill()
                except OSError:
                    pass

    def exit_code(self) -> int:
        code = self.proc.wait()
        return 128 - code if code < 0 else code

    def cleanup(self) -> None:
        for fd in [self.master]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for stream in (getattr(self.proc, "stdout", None), getattr(self.proc, "stderr", None)):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class ExecSession:
    """Runs one exec over an upgraded socket; call `run()` after the 101 was sent."""

    def __init__(self, sock: socket.socket, req: ExecRequest, protocol: str, handler: ExecHandler | None):
        self.sock = sock
        self.req = req
        self.protocol = protocol
        self.handler = handler
        self.parser = FrameParser()
        self.client_gone = False
        self.client_closed = False
        self.stdin_buf = bytearray()
        self.stdin_eof = False
        self.pending_size: tuple[int, int] | None = None
        self.settled_at = time.monotonic() + SETTLE_SECONDS

    # --- socket side ---

    def _send(self, data: bytes) -> None:
        if self.client_gone:
            return
        wait = self.settled_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            self.sock.sendall(data)
        except OSError:
            self.client_gone = True

    def _send_channel(self, channel: int, data: bytes) -> None:
        self._send(encode_frame(OP_BINARY, bytes([channel]) + data))

    def _readable_now(self) -> bool:
        pending = getattr(self.sock, "pending", None)
        return bool(pending and pending())

    def _read_socket(self, proc: _Process | None) -> None:
        try:
            data = self.sock.recv(65536)
        except (OSError, ValueError):
            data = b""
        if not data:
            self.client_gone = True
            return
        try:
            messages = self.parser.feed(data)
        except ProtocolError as exc:
            self._send(close_frame(exc.code))
            self.client_gone = True
            return
        for msg in messages:
            if msg.opcode == OP_PING:
                self._send(encode_frame(OP_PONG, msg.payload))
            elif msg.opcode == OP_CLOSE:
                self.client_closed = True
            elif msg.opcode == OP_PONG:
                continue
            elif msg.payload and proc is not None:
                self._on_data(proc, msg.payload[0], msg.payload[1:])
            elif msg.payload:
                self._early_data(msg.payload[0], msg.payload[1:])

    def _early_data(self, channel: int, data: bytes) -> None:
        """Frames that arrive before the process runs: keep stdin and the size for later."""
        if channel == STDIN:
            self.stdin_buf += data
        elif channel == RESIZE:
            try:
                size = json.loads(data.decode() or "{}")
                self.pending_size = (int(size.get("Width", 0)), int(size.get("Height", 0)))
            except (ValueError, AttributeError):
                self.pending_size = (0, 0)
        elif channel == CLOSE and data[:1] == bytes([STDIN]):
            self.stdin_eof = True

    def _on_data(self, proc: _Process, channel: int, data: bytes) -> None:
        if channel == STDIN:
            if data and proc.stdin_fd is not None and not self.stdin_eof:
                self.stdin_buf += data
        elif channel == RESIZE:
            try:
                size = json.loads(data.decode() or "{}")
                proc.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
            except (ValueError, OSError, AttributeError):
                pass
        elif channel == CLOSE and self.protocol.startswith("v5") and data[:1] == bytes([STDIN]):
            self.stdin_eof = True

    # --- process side ---

    def _start(self) -> _Process | dict[str, Any]:
        if self.handler is None:
            return failure_status("exec is not supported by this server", "BadRequest", 400)
        req = self.req
        try:
            target = self.handler(req.namespace, req.pod, req.container, list(req.command), req.tty)
            proc = _Process(req, target, self.pending_size)
            if self.pending_size is not None and proc.master is None:
                proc.resize(*self.pending_size)
            if proc.stdin_fd is None:
                self.stdin_buf.clear()
            return proc
        except ApiError as exc:
            return failure_status(exc.message, exc.reason, exc.code)
        except (FileNotFoundError, PermissionError) as exc:
            return failure_status(
                "Internal error occurred: error executing command in container: failed to exec in container: "
                f"OCI runtime exec failed: exec failed: unable to start container process: exec: "
                f"\"{req.command[0] if req.command else ''}\": {exc.strerror}: unknown")

    def _await_terminal_size(self, wait: float = 0.5) -> None:
        """TTY mode: kubectl sends the terminal size first; start the command with it (a shell
        started at 0x0 misbehaves, and a command that ends before kubectl's first resize makes
        kubectl report its late resize as an error)."""
        deadline = time.monotonic() + wait
        while self.pending_size is None and not (self.client_gone or self.client_closed):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not self._readable_now():
                try:
                    ready, _, _ = select.select([self.sock], [], [], left)
                except (OSError, ValueError):
                    return
                if not ready:
                    return
            self._read_socket(None)

    def run(self) -> None:
        if self.req.tty:
            self._await_terminal_size()
        started = self._start()
        if isinstance(started, dict):
            self._finish(started)
            return
        proc = started
        try:
            self._pump(proc)
            if self.client_gone or self.client_closed:
                proc.kill()
                status = None
            else:
                code = proc.exit_code()
                status = success_status() if code == 0 else exit_status(self.req.command, code)
        finally:
            if self.client_gone or self.client_closed:
                proc.kill()
            proc.close_stdin()
            proc.cleanup()
        if status is not None:
            self._finish(status)

    def _pump(self, proc: _Process) -> None:
        outputs = dict(proc.outputs)      # channel -> fd
        while outputs or proc.proc.poll() is None:
            if self.client_gone or self.client_closed:
                return
            if self.stdin_buf and proc.stdin_fd is not None:
                self._flush_stdin(proc)
            if self.stdin_eof and not self.stdin_buf and proc.stdin_fd is not None:
                proc.close_stdin()
            if self._readable_now():
                self._read_socket(proc)
                continue
            rlist: list[Any] = [self.sock] + list(outputs.values())
            wlist = [proc.stdin_fd] if self.stdin_buf and proc.stdin_fd is not None else []
            try:
                ready, writable, _ = select.select(rlist, wlist, [], 0.2)
            except (OSError, ValueError):
                return
            if writable:
                self._flush_stdin(proc)
            for fd in ready:
                if fd is self.sock:
                    self._read_socket(proc)
                    continue
                channel = next(c for c, f in outputs.items() if f == fd)
                try:
                    data = os.read(fd, READ_SIZE)
                except OSError as exc:   # EIO: the pty's last writer is gone
                    if exc.errno not in (errno.EIO, errno.EBADF):
                        raise
                    data = b""
                if data:
                    self._send_channel(channel, data)
                else:
                    del outputs[channel]

    def _flush_stdin(self, proc: _Process) -> None:
        try:
            n = os.write(proc.stdin_fd, bytes(self.stdin_buf))  # type: ignore[arg-type]
            del self.stdin_buf[:n]
        except BlockingIOError:
            pass
        except OSError:          # the process closed its stdin
            self.stdin_buf.clear()
            proc.close_stdin()

    def _finish(self, status: dict[str, Any]) -> None:
        """One status on channel 3, close 1000, then wait briefly for the client's close."""
        self._send_channel(ERROR, json.dumps(status, separators=(",", ":")).encode())
        self._send(close_frame(1000))
        deadline = time.monotonic() + 2.0
        while not (self.client_gone or self.client_closed) and time.monotonic() < deadline:
            if not self._readable_now():
                try:
                    ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
                except (OSError, ValueError):
                    return
                if not ready:
                    return
            self._read_socket(None)
