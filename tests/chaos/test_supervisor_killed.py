"""`kill -9` of the background supervisor in the middle of a scale-up, then `minieks up --cluster` again:
the same pods, the addresses they had before the kill unchanged, none given twice, EC2 = ipamd = pods,
and the pods answer on the pod network (issue 6's crash test, with the kill point chosen at random)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from minieks.lab.seed import NGINX
from tests.chaos.cli_cluster import CliCluster
from tests.chaos.invariants import check_settled, instance_id, node_namespaces, pod_network_pods, running
from tests.cluster.conftest import needs_kernel, needs_kubectl, wait_for

pytestmark = [pytest.mark.kernel, needs_kernel, needs_kubectl]

REPLICAS = 24                   # 2 nodes × 15 pod addresses − 2 CoreDNS = 28 fit; 26 on the pod network


def scenario_supervisor_killed_mid_scale_up(make, tmp_path: Path, rng: random.Random) -> None:
    cluster = CliCluster(tmp_path)
    try:
        kubectl = cluster.up()
        kubectl("apply", "-f", "-", input=NGINX)
        wait_for(lambda: running(kubectl, "app=nginx", 2), timeout=60, what="2 nginx pods")
        pid, ipamds = cluster.supervisor_pid(), cluster.ipamd_pids()
        assert len(ipamds) == 2
        kill_after = rng.randrange(4, REPLICAS - 4)            # pods with an address when the supervisor dies
        kubectl("scale", "deployment", "nginx-deployment", f"--replicas={REPLICAS}")

        def mid_scale():
            pods = kubectl.json("get", "pod", "-l", "app=nginx")["items"]
            with_ip = [p for p in pods if p["status"].get("podIP")]
            return pods if len(pods) == REPLICAS and kill_after <= len(with_ip) < REPLICAS else None
        snapshot = wait_for(mid_scale, timeout=60, interval=0.1, what="the scale-up under way")
        os.kill(pid, signal.SIGKILL)
        before = {p["metadata"]["name"]: p["status"].get("podIP") for p in snapshot}
        cluster.wait_gone([pid], "the supervisor gone")
        cluster.wait_gone(ipamds, "the ipamds gone with their supervisor")        # PR_SET_PDEATHSIG
        assert cluster.minieks("status", "--cluster", cluster.name).stdout.startswith(
            f"cluster {cluster.name}: stopped")
        assert f"mek-{cluster.name}-n1" in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                          text=True).stdout

        cluster.resume()
        assert cluster.supervisor_pid() != pid
        pods = wait_for(lambda: running(kubectl, "app=nginx", REPLICAS), timeout=180,
                        what=f"{REPLICAS} nginx pods after the resume")
        after = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
        assert set(after) == set(before)                                       # the same pods
        assert {n: ip for n, ip in after.items() if before[n]} == {n: ip for n, ip in before.items() if ip}
        every = [p["status"]["podIP"] for p in pod_network_pods(kubectl)]
        assert len(every) == REPLICAS + 2 and len(set(every)) == REPLICAS + 2
        check_settled(kubectl, cluster.state)
        # nginx answers, on a pod addressed before the kill and one after
        namespaces = node_namespaces(cluster.state)
        nodes = {n["metadata"]["name"]: instance_id(n) for n in kubectl.json("get", "nodes")["items"]}
        old = next(p for p in pods if before[p["metadata"]["name"]])
        new = next((p for p in pods if not before[p["metadata"]["name"]]), old)
        for pod in (old, new):
            page = subprocess.run(["ip", "netns", "exec", namespaces[nodes[pod["spec"]["nodeName"]]], "curl", "-s",
                                   "-m", "5", f"http://{pod['status']['podIP']}/"], capture_output=True, text=True,
                                  timeout=20).stdout
            assert "Welcome to nginx!" in page, pod["metadata"]["name"]
    finally:
        cluster.down()


def test_a_supervisor_killed_mid_scale_up_resumes_without_losing_or_leaking_addresses(tmp_path):
    scenario_supervisor_killed_mid_scale_up(None, tmp_path, random.Random(0))
