"""Debian's chromium, headless, for looking at the board as a person would: one-shot runs
(--dump-dom, --screenshot) and a long-lived page driven over the DevTools protocol on 127.0.0.1,
so a test can watch one page update itself without reloading.

Every browser is started in its own process group and stopped by that group's id (its leader is
the pid we started), never by name.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client, a dependency of the kubernetes client

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


class Page:
    """A page kept open in a headless browser; evaluate() runs JavaScript in it."""

    def __init__(self, profile: Path, url: str, timeout: float = 30):
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self._ids = itertools.count(1)
        self.ws = None
        try:
            self.ws = websocket.create_connection(self._page_socket(profile, url, timeout), timeout=timeout,
                                                  suppress_origin=True)
        except BaseException:
            self.close()
            raise

    def _page_socket(self, profile: Path, url: str, timeout: float) -> str:
        deadline = time.time() + timeout
        port_file = profile / "DevToolsActivePort"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                port = int(port_file.read_text().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    targets = json.load(response)
                for target in targets:
                    if target.get("type") == "page" and target.get("url", "").startswith(url):
                        return target["webSocketDebuggerUrl"]
            time.sleep(0.2)
        raise RuntimeError("chromium did not open the page in time")

    def call(self, method: str, **params) -> dict:
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, png: Path) -> Path:
        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return png

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()
        _stop_group(self.proc)
