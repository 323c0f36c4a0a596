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
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(argv: Sequence[str], pid_dir: Path, name: str, env: dict[str, str] | None = None,
          log_path: Path | None = None) -> subprocess.Popen:
    """Start `argv`, record it as `<pid_dir>/<name>.pid`, and tie its life to ours."""
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
