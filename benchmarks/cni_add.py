"""CNI ADD latency on a warm pool, as kubelet calls it (exec of the aws-cni plugin in the node's
namespace), against Mininet building the same number of hosts in the same run.

Prints p50/p99 of ADD for 100 pods one by one and 30 at once (targets: p50 ≤ 30 ms, p99 ≤ 100 ms on
this 2-core machine), DEL latency, kernel memory per pod (MemAvailable before and after), and the
ratio to Mininet's per-host time (Debian's `mininet`, a benchmark dependency only:
`apt-get install --no-install-recommends mininet`). Needs root; everything it makes is `mek-`.

Run: sudo .venv/bin/python benchmarks/cni_add.py
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from minieks.cni import runtime
from minieks.fabric import netns
from minieks.fabric.lab import Lab, executor_socket, sandbox_id

ONE_BY_ONE, AT_ONCE = 100, 30
HERE = Path(__file__).resolve().parent


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def pool_size(lab: Lab, instance_id: str) -> int:
    enis = lab.ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id",
                                                         "Values": [instance_id]}])["NetworkInterfaces"]
    return sum(16 * len(e.get("Ipv4Prefixes", [])) + len(e["PrivateIpAddresses"]) - 1 for e in enis)


def sandbox(node, namespace: str, name: str, uid: str) -> runtime.PodRef:
    """The pod's sandbox namespace, as the container runtime makes it before calling CNI (not timed)."""
    pod_ns = f"{node.namespace}-{sandbox_id(uid)[:12]}"
    netns.create(pod_ns)
    return runtime.PodRef(namespace, name, uid, sandbox_id(uid), netns.path(pod_ns))


def timed_add(lab: Lab, node, ref: runtime.PodRef) -> float:
    start = time.perf_counter()
    runtime.call("ADD", node.namespace, ref, node.socket, node.cni_env,
                 executor=executor_socket(lab.name, node.instance_id))
    return time.perf_counter() - start


def cni_add(lab: Lab, node, namespace: str, name: str, uid: str) -> float:
    """One sandbox namespace (not timed, the runtime's part), then the timed CNI ADD."""
    return timed_add(lab, node, sandbox(node, namespace, name, uid))


def cni_del(lab: Lab, node, namespace: str, name: str, uid: str) -> float:
    pod_ns = f"{node.namespace}-{sandbox_id(uid)[:12]}"
    ref = runtime.PodRef(namespace, name, uid, sandbox_id(uid), netns.path(pod_ns))
    start = time.perf_counter()
    runtime.call("DEL", node.namespace, ref, node.socket, node.cni_env,
                 executor=executor_socket(lab.name, node.instance_id))
    elapsed = time.perf_counter() - start
    netns.delete(pod_ns)
    return elapsed


def mininet_hosts(count: int) -> list[float] | None:
    if subprocess.run(["/usr/bin/python3", "-c", "import mininet"], capture_output=True).returncode != 0:
        return None
    ns = f"mek-bench{secrets.token_hex(3)}-mn"
    netns.create(ns)
    try:
        done = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", str(HERE / "mininet_hosts.py"),
                               str(count)], capture_output=True, text=True, timeout=600)
        return json.loads(done.stdout) if done.returncode == 0 else None
    finally:
        netns.delete(ns)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    os.environ.setdefault("MINIEKS_STATE_ROOT", tempfile.mkdtemp(prefix="mek-bench-"))
    name = "bench" + secrets.token_hex(3)
    lab = Lab(name, persist=False, placement="lowest")
    try:
        lab.create_vpc("192.168.0.0/16", {"a": ("192.168.0.0/20", "ap-northeast-2a")})
        node = lab.add_node("m5.4xlarge", "a", max_pods=250,
                            cni_env={"ENABLE_PREFIX_DELEGATION": "true", "MINIMUM_IP_TARGET": "176",
                                     "WARM_IP_TARGET": "16"})
        deadline = time.time() + 60
        while pool_size(lab, node.instance_id) < ONE_BY_ONE + AT_ONCE and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(3)                              # ipamd has read the prefixes into its datastore
        print(f"warm pool: {pool_size(lab, node.instance_id)} addresses on {node.instance_id} (m5.4xlarge, "
              f"prefix delegation)")
        before = mem_available_kib()
        serial = [cni_add(lab, node, "default", f"one-{i}", f"one-{i}") for i in range(ONE_BY_ONE)]
        used_kib = before - mem_available_kib()
        # 30 sandboxes first, then their 30 ADDs released together (as kubelet's pod workers would)
        refs = [sandbox(node, "default", f"burst-{i}", f"burst-{i}") for i in range(AT_ONCE)]
        parallel: list[float] = []
        lock = threading.Lock()
        go = threading.Barrier(AT_ONCE + 1)

        def one(ref: runtime.PodRef) -> None:
            go.wait()
            took = timed_add(lab, node, ref)
            with lock:
                parallel.append(took)
        threads = [threading.Thread(target=one, args=(ref,)) for ref in refs]
        for t in threads:
            t.start()
        go.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        burst_wall = time.perf_counter() - start
        deletes = [cni_del(lab, node, "default", f"one-{i}", f"one-{i}") for i in range(ONE_BY_ONE)]
        deletes += [cni_del(lab, node, "default", f"burst-{i}", f"burst-{i}") for i in range(AT_ONCE)]
    finally:
        lab.close()
    print(f"CNI ADD, {ONE_BY_ONE} pods one by one: p50 {pct(serial, 50):.1f} ms, p99 {pct(serial, 99):.1f} ms "
          f"(targets p50 ≤ 30 ms, p99 ≤ 100 ms)")
    print(f"CNI ADD, {AT_ONCE} pods at once: p50 {pct(parallel, 50):.1f} ms, p99 {pct(parallel, 99):.1f} ms, "
          f"all {AT_ONCE} in {burst_wall:.2f} s ({burst_wall / AT_ONCE * 1000:.1f} ms of wall time per pod)")
    print(f"CNI DEL: p50 {pct(deletes, 50):.1f} ms, p99 {pct(deletes, 99):.1f} ms")
    print(f"kernel memory per wired pod: {used_kib / ONE_BY_ONE:.0f} KiB (MemAvailable drop over {ONE_BY_ONE} pods)")
    hosts = mininet_hosts(ONE_BY_ONE + AT_ONCE)
    if hosts is None:
        print("Mininet: not installed (apt-get install --no-install-recommends mininet); no ratio")
        return
    ours = pct(serial, 50)
    theirs = pct(hosts, 50)
    print(f"Mininet, {len(hosts)} hosts (netns + veth + address + route): p50 {theirs:.1f} ms per host; "
          f"minieks pod (CNI ADD through ipamd) / Mininet host = {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
