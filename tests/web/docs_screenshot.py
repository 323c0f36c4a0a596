"""Makes docs/board.png: the seed lab's step 9 on the board. Three t3.medium nodes, netshoot-pod x3,
nginx-deployment scaled to 50 (past max pods: Pending, "Too many pods"), then four running nginx
pods deleted: their addresses cool down, and the pods that replace them wait in ContainerCreating
with FailedCreatePodSandBox until the cooldown ends.

    sudo .venv/bin/python -m tests.web.docs_screenshot docs/board.png

Needs root and chromium; builds its cluster (named "demo") under a temporary state root and removes
every namespace it made, even when interrupted.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(out: str) -> None:
    root = tempfile.mkdtemp(prefix="minieks-board-")
    os.environ["MINIEKS_STATE_ROOT"] = root       # before the lab reads it
    from minieks.cluster.runtime import ClusterRuntime
    from minieks.cluster.spec import ClusterSpec
    from minieks.fabric.lab import cleanup
    from tests.web import chromium
    from tests.web.test_board_live import deployment

    def running(app: str) -> list[str]:
        pods, _ = runtime.store.list("pods", "default", labels=f"app={app}")
        return [p["metadata"]["name"] for p in pods
                if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]

    def wait(predicate, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while not predicate():
            if time.time() > deadline:
                raise SystemExit("timed out")
            time.sleep(0.5)

    runtime = ClusterRuntime(ClusterSpec(name="demo"))
    try:
        runtime.start()
        runtime.store.create("deployments", deployment("netshoot-pod", 3), namespace="default")
        runtime.store.create("deployments", deployment("nginx-deployment", 2), namespace="default")
        wait(lambda: len(running("netshoot-pod")) == 3 and len(running("nginx-deployment")) == 2)
        runtime.store.patch("deployments", "default", "nginx-deployment", {"spec": {"replicas": 50}})
        wait(lambda: len(running("nginx-deployment")) >= 38)
        for name in running("nginx-deployment")[:4]:
            runtime.store.delete("pods", "default", name, grace_period=0)
        time.sleep(6)
        chromium.screenshot(Path(root) / "profile", runtime.board.url, Path(out).resolve())
        print(f"wrote {out}")
    finally:
        try:
            runtime.stop()
        finally:
            cleanup("demo")
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/board.png")
