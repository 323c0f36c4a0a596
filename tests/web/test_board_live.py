"""The board in a real browser against a real cluster: headless Chromium keeps the page open while
a Deployment is created and scaled through the Kubernetes store, and the page must show the pods
(by name, on their address slots) within seconds, then show them gone and their addresses cooling
down, without a reload. A Pending pod shows the scheduler's reason. A screenshot is kept."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.conftest import wait_for

from minieks.cluster.runtime import ClusterRuntime
from minieks.cluster.spec import ClusterSpec, NodeGroupSpec
from minieks.fabric.lab import cleanup
from tests.web import chromium

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and network namespaces"),
    pytest.mark.skipif(chromium.CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]

LIVE_WITHIN = 3.0    # the page polls every second; the snapshot is at most 0.5 s old
SCREENSHOT_ENV = "MINIEKS_BOARD_SCREENSHOT"   # where to copy the picture (e.g. docs/board.png)

PAGE_STATE = """JSON.stringify(!document.getElementById('pending') ? {state: 'loading', nodes: [], pods: [],
  slots: [], pending: ''} : {
  state: document.body.dataset.state,
  nodes: [...document.querySelectorAll('article.node')].map(n => n.dataset.node),
  pods: [...document.querySelectorAll('article.node li.pod')].map(p => [p.dataset.pod, p.dataset.status]),
  slots: [...document.querySelectorAll('article.node .slot[data-ip]')].map(
    s => [s.dataset.ip, s.dataset.state, s.dataset.pod || null]),
  pending: (document.getElementById('pending').innerText || '')})"""


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": name, "image": "nginx:alpine"}]}}}}


@pytest.fixture
def cluster(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MINIEKS_STATE_ROOT", str(root))
    name = "w" + secrets.token_hex(3)
    spec = ClusterSpec(name=name, node_groups=[NodeGroupSpec(name="ng1", instance_type="t3.medium",
                                                             desired_capacity=2)])
    runtime = ClusterRuntime(spec)
    try:
        runtime.start()
        yield runtime
    finally:
        try:
            runtime.stop()
        finally:
            cleanup(name)


def running_web(runtime: ClusterRuntime) -> dict[str, str]:
    """default/<pod> → pod IP of the web Deployment's Running, not terminating pods."""
    pods, _ = runtime.store.list("pods", "default", labels="app=web")
    return {f"default/{p['metadata']['name']}": p["status"]["podIP"] for p in pods
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def web_pods_in_store(runtime: ClusterRuntime) -> set[str]:
    pods, _ = runtime.store.list("pods", "default", labels="app=web")
    return {f"default/{p['metadata']['name']}" for p in pods}


def page_state(page: chromium.Page) -> dict:
    return json.loads(page.evaluate(PAGE_STATE))


def page_web(state: dict) -> dict[str, str]:
    return {pod: status for pod, status in state["pods"] if pod.startswith("default/web-")}


def test_board_follows_pods_live_in_chromium(cluster, tmp_path):
    runtime = cluster
    url = runtime.board.url
    assert url.startswith("http://127.0.0.1:")
    endpoints = json.loads((runtime.state / "endpoints.json").read_text())
    assert endpoints["board_url"] == url
    printed = subprocess.run([sys.executable, "-m", "minieks.cli", "board", "--cluster", runtime.spec.name],
                             capture_output=True, text=True, timeout=30, env=dict(os.environ))
    assert printed.returncode == 0 and printed.stdout == url + "\n", printed.stderr

    page = chromium.Page(tmp_path / "profile", url)
    try:
        state = wait_for(lambda: (s := page_state(page))["state"] == "live" and len(s["nodes"]) == 2 and s,
                         30, "the page to show two nodes")
        assert set(state["nodes"]) == set(runtime.kubelets)

        # pods appear: on their nodes, each on the slot of its address
        runtime.store.create("deployments", deployment("web", 4), namespace="default")
        wait_for(lambda: len(running_web(runtime)) == 4, 90, what="4 web pods Running", interval=0.2)
        seen_running = time.time()
        state = wait_for(lambda: (s := page_state(page)) and
                         set(page_web(s)) >= set(running_web(runtime)) and
                         all(v == "Running" for k, v in page_web(s).items() if k in running_web(runtime)) and s,
                         LIVE_WITHIN + 5, "the page to show the 4 web pods")
        lag = time.time() - seen_running
        assert lag <= LIVE_WITHIN, f"the page showed the pods {lag:.1f}s after they ran"
        slots = {ip: (st, pod) for ip, st, pod in state["slots"]}
        for pod, ip in running_web(runtime).items():
            assert slots[ip] == ("assigned", pod)

        # a pod no node can take: Pending with the scheduler's words
        runtime.store.create("pods", {"metadata": {"name": "nowhere", "namespace": "default"},
                                      "spec": {"nodeSelector": {"disktype": "ssd"},
                                               "containers": [{"name": "c", "image": "nginx:alpine"}]}},
                             namespace="default")
        wait_for(lambda: "didn't match Pod's node affinity/selector" in page_state(page)["pending"],
                 LIVE_WITHIN + 10, "the Pending area to show the scheduler's reason")

        # scale up then down: pods go, their addresses cool down, the page follows without a reload
        runtime.store.patch("deployments", "default", "web", {"spec": {"replicas": 7}})
        wait_for(lambda: len(running_web(runtime)) == 7, 90, what="7 web pods Running", interval=0.2)
        before = running_web(runtime)
        runtime.store.patch("deployments", "default", "web", {"spec": {"replicas": 3}})
        wait_for(lambda: len(web_pods_in_store(runtime)) == 3, 60, what="the web Deployment at 3 pods", interval=0.2)
        gone_at = time.time()
        remaining = web_pods_in_store(runtime)
        state = wait_for(lambda: (s := page_state(page)) and set(page_web(s)) == remaining and s,
                         LIVE_WITHIN + 5, "the page to drop the deleted pods")
        lag = time.time() - gone_at
        assert lag <= LIVE_WITHIN, f"the page dropped the pods {lag:.1f}s after they were deleted"
        released = {ip for pod, ip in before.items() if pod not in remaining}
        state = wait_for(lambda: (s := page_state(page)) and
                         {ip for ip, st, _ in s["slots"] if st == "cooldown"} >= released and s,
                         LIVE_WITHIN + 5, "the released addresses to show as cooling down")
        assert {ip for ip, st, _ in state["slots"] if st == "warm"}, "no warm address on the board"

        shot = page.screenshot(tmp_path / "board-live.png")
        assert shot.stat().st_size > 10_000
    finally:
        page.close()

    # a fresh load shows the same picture (the one-shot DOM dump a user's browser would get)
    dom = chromium.dump_dom(tmp_path / "profile-dump", url)
    for pod in remaining:
        assert f'data-pod="{pod}"' in dom
    assert "nowhere" in dom
    png = chromium.screenshot(tmp_path / "profile-shot", url, tmp_path / "board.png")
    assert png.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(png, Path(os.environ[SCREENSHOT_ENV]))
