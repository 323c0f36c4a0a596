"""Debian's chromium, headless, for looking at the board as a person would: one-shot runs
(--dump-dom, --screenshot), used by the lab's report for the board's pictures and by the tests.

Every browser is started in its own process group and stopped by that group's id (its leader is
the pid we started), never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--no-proxy-server", "--hide-scrollbars", "--window-size=1280,800"]


def _stop_group(proc: subprocess.Popen) -> None:
    """End the browser we started and everything it forked (same process group), then reap it."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)   # helpers that outlived the leader


def run_once(profile: Path, *args: str, timeout: float = 60) -> str:
    """One headless run (e.g. --dump-dom URL); its stdout."""
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    finally:
        _stop_group(proc)


def dump_dom(profile: Path, url: str, budget_ms: int = 4000) -> str:
    return run_once(profile, f"--virtual-time-budget={budget_ms}", "--dump-dom", url)


def screenshot(profile: Path, url: str, png: Path, budget_ms: int = 4000) -> Path:
    run_once(profile, f"--virtual-time-budget={budget_ms}", f"--screenshot={png}", url)
    return png
