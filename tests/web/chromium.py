"""A long-lived headless page driven over the DevTools protocol on 127.0.0.1, so a test can watch
one page update itself without reloading (the one-shot runs live in minieks.web.browser)."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client, a dependency of the kubernetes client

from minieks.web.browser import CHROMIUM, FLAGS, _stop_group, dump_dom, run_once, screenshot  # noqa: F401


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
