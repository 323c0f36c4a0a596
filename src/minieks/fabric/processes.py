"""Processes a lab starts (one ipamd per node, for instance), and how they are stopped.

Each child is started so that it dies with the process that started it (PR_SET_PDEATHSIG), and is
recorded in a pid file in the lab's state directory, so a cleanup after `kill -9` of the lab finds
and stops exactly the lab's own processes (a pid file whose process no longer runs our command is
ignored: pids get reused).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _Spawner:
    """One long-lived thread that starts every child.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: a child
    started from a short-lived thread (an HTTP handler, a subscription) would be killed as soon as
    that thread ends. Forking from this thread, which lives as long as the process, ties children
    to the process's life only."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="minieks-spawner", daemon=True)
                self._thread.start()
        done: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((fn, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:
            fn, done = self._requests.get()
            try:
                done.put((True, fn()))
            except BaseException as err:  # noqa: BLE001 - handed back to the caller
                done.put((False, err))


_SPAWNER = _Spawner()


def spawn(argv: Sequence[str], pid_dir: Path, name: str, env: dict[str, str] | None = None,
          log_path: Path | None = None) -> subprocess.Popen:
    """Start `argv`, record it as `<pid_dir>/<name>.pid`, and tie its life to this process's."""
    return _SPAWNER.run(lambda: _spawn(argv, pid_dir, name, env, log_path))


def _spawn(argv: Sequence[str], pid_dir: Path, name: str, env: dict[str, str] | None,
           log_path: Path | None) -> subprocess.Popen:
    pid_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(list(argv), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    finally:
        if log_path:
            log.close()
    (pid_dir / f"{name}.pid").write_text(json.dumps({"pid": proc.pid, "argv": list(argv)}))
    return proc


def _runs(pid: int, argv: list[str]) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return [c.decode(errors="replace") for c in cmdline if c] == argv


def stop(pid_dir: Path, name: str, timeout: float = 10.0) -> None:
    """SIGTERM the recorded process (if it is still ours), wait, SIGKILL if it lingers."""
    record = pid_dir / f"{name}.pid"
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    pid, argv = data["pid"], data["argv"]
    if _runs(pid, argv):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while _runs(pid, argv) and time.time() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _runs(pid, argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    record.unlink(missing_ok=True)


def stop_all(pid_dir: Path, timeout: float = 10.0) -> list[str]:
    names = sorted(p.stem for p in pid_dir.glob("*.pid")) if pid_dir.exists() else []
    for name in names:
        stop(pid_dir, name, timeout)
    return names


def running(pid_dir: Path) -> list[tuple[str, int]]:
    """The recorded processes still running their command (what stop_all would stop), by name."""
    found = []
    for record in sorted(pid_dir.glob("*.pid")) if pid_dir.exists() else []:
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if _runs(data["pid"], data["argv"]):
            found.append((record.stem, data["pid"]))
    return found
