"""A cluster's speed as a user feels it: time from `minieks up` to every system pod Running, time
for 50 nginx replicas to be Running on nodes with room (prefix delegation on), and the API's
latency for `get pods` with 1,000 pods in the store.

Targets with the instant latency profile: up in under 10 s, 50 pods Running in under 5 s.
Run: sudo .venv/bin/python benchmarks/cluster.py   (everything it makes is `mek-` and removed)
"""

from __future__ import annotations

import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from minieks.cluster.runtime import ClusterRuntime
from minieks.cluster.spec import ClusterSpec, NodeGroupSpec
from minieks.fabric.lab import cleanup
from minieks.lab.seed import NGINX


def running(store, namespace: str, selector: str | None = None) -> tuple[int, int]:
    pods, _ = store.list("pods", namespace, labels=selector)
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"), len(pods)


def wait(predicate, timeout: float = 120) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.05)
    return time.perf_counter() - start


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    os.environ.setdefault("MINIEKS_STATE_ROOT", tempfile.mkdtemp(prefix="mek-bench-"))
    name = "cb" + secrets.token_hex(3)
    spec = ClusterSpec(name=name, node_groups=[NodeGroupSpec(name="ng1", instance_type="t3.medium", desired_capacity=3)],
                       cni_env={"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "2"})
    start = time.perf_counter()
    runtime = ClusterRuntime(spec).start()
    try:
        store = runtime.store
        wait(lambda: running(store, "kube-system") == (8, 8))
        up = time.perf_counter() - start
        print(f"minieks up → all 8 system pods Running: {up:.2f} s (target < 10 s)")
        env = dict(os.environ, KUBECONFIG=str(runtime.kubeconfig))
        subprocess.run(["kubectl", "apply", "-f", "-"], input=NGINX, text=True, env=env, capture_output=True, check=True)
        wait(lambda: running(store, "default", "app=nginx")[0] == 2)
        time.sleep(6)                              # the warm pool settles (two free prefixes per node)
        start = time.perf_counter()
        store.patch("deployments", "default", "nginx-deployment", {"spec": {"replicas": 50}})
        took = wait(lambda: running(store, "default", "app=nginx")[0] == 50)
        print(f"50 nginx replicas Running (prefix delegation, max pods 110): {took:.2f} s after the scale "
              f"(target < 5 s)")
        store.create("namespaces", {"metadata": {"name": "load"}})
        for n in range(1000):                      # bound to no real node: listed, never run
            store.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": f"load-{n:04d}", "namespace": "load"},
                                  "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "x"}]}})
        context = ssl.create_default_context(cadata=runtime.api.ca_pem.decode())
        headers = {"Authorization": f"Bearer {runtime.api.token}",
                   "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
        samples = []
        for _ in range(20):
            request = urllib.request.Request(f"{runtime.api.url}/api/v1/namespaces/load/pods?limit=500", headers=headers)
            t = time.perf_counter()
            with urllib.request.urlopen(request, context=context) as response:
                response.read()
            samples.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(["kubectl", "get", "pods", "-n", "load"], env=env, capture_output=True, check=True)
        kubectl = time.perf_counter() - t
        print(f"GET pods as a Table with 1,000 pods: p50 {statistics.median(samples) * 1000:.1f} ms, "
              f"worst {max(samples) * 1000:.1f} ms; `kubectl get pods -n load` {kubectl * 1000:.0f} ms end to end")
    finally:
        runtime.stop()
        cleanup(name)


if __name__ == "__main__":
    main()
