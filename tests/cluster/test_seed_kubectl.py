"""The seed lab's kubectl commands, verbatim, against a minieks cluster of three t3.medium nodes."""

import re
import select
import subprocess
import time

import pytest

from minieks.cluster.spec import NodeGroupSpec
from minieks.lab.seed import NETSHOOT, NGINX
from tests.cluster.conftest import KUBECTL, needs_kernel, needs_kubectl, wait_for

pytestmark = [pytest.mark.kernel, needs_kernel, needs_kubectl]

TOO_MANY = ("0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod.")


def running(kubectl, selector, n, namespace="default"):
    pods = kubectl.json("get", "pod", "-n", namespace, "-l", selector)["items"]
    ok = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    return ok if len(ok) == n else None


def test_the_seed_lab_with_kubectl(make_cluster):
    runtime, kubectl = make_cluster()
    # step 1/3: nodes and the CoreDNS pods on the pod network
    nodes = kubectl("get", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert len(nodes) == 4
    assert all(re.match(r"ip-192-168-[123]-\d+\.ap-northeast-2\.compute\.internal\s+Ready\s+<none>\s+\S+\s+"
                        r"v1\.31\.4-eks-", line) for line in nodes[1:])
    node = kubectl.json("get", "nodes")["items"][0]
    assert node["spec"]["providerID"].startswith("aws:///ap-northeast-2")
    assert node["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "ng1"
    assert node["status"]["capacity"]["pods"] == "17"
    described = kubectl("describe", "node", node["metadata"]["name"]).stdout
    assert re.search(r"Capacity:\n(?:  .*\n)*  pods:\s+17\n", described)
    assert re.search(r"Allocatable:\n(?:  .*\n)*  pods:\s+17\n", described)
    assert "Non-terminated Pods:" in described and "aws-node-" in described
    wait_for(lambda: running(kubectl, "k8s-app=kube-dns", 2, "kube-system"), what="coredns")
    dns = kubectl("get", "pod", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-owide").stdout
    node_ips = {a["address"] for n in kubectl.json("get", "nodes")["items"] for a in n["status"]["addresses"]
                if a["type"] == "InternalIP"}
    dns_ips = re.findall(r"Running\s+0\s+\S+\s+(192\.168\.\d+\.\d+)", dns)
    assert len(dns_ips) == 2 and not set(dns_ips) & node_ips
    # step 4: netshoot, names and IPs three ways
    assert "deployment.apps/netshoot-pod created" in kubectl("apply", "-f", "-", input=NETSHOOT).stdout
    wait_for(lambda: running(kubectl, "app=netshoot-pod", 3), what="netshoot pods")
    name1 = kubectl("get", "pod", "-l", "app=netshoot-pod", "-o", "jsonpath={.items[0].metadata.name}").stdout
    ip2 = kubectl("get", "pod", "-l", "app=netshoot-pod", "-o", "jsonpath={.items[1].status.podIP}").stdout
    assert name1.startswith("netshoot-pod-") and re.fullmatch(r"192\.168\.\d+\.\d+", ip2)
    columns = kubectl("get", "pod", "-o=custom-columns=NAME:.metadata.name,IP:.status.podIP").stdout.splitlines()
    assert columns[0].split() == ["NAME", "IP"] and len(columns) == 4
    wide = kubectl("get", "pod", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[:6] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    # step 5: pod to pod, no NAT (the address seen is the pod's)
    ping = kubectl("exec", "-it", name1, "--", "ping", "-c", "2", ip2)
    assert "2 received" in ping.stdout
    # step 6: pod to the internet stand-in, by name
    out = kubectl("exec", name1, "--", "ping", "-c", "1", "www.example.com").stdout
    assert "1 received" in out and "203.0.113.10" in out
    # step 9: nginx scaled past the cluster's max pods
    kubectl("apply", "-f", "-", input=NGINX)
    assert "scaled" in kubectl("scale", "deployment", "nginx-deployment", "--replicas=50").stdout
    # 3 × 17 max pods − 6 host-network − 2 CoreDNS − 3 netshoot = 40 can run
    wait_for(lambda: running(kubectl, "app=nginx", 40), timeout=120, what="40 nginx pods")
    pods = kubectl.json("get", "pod", "-l", "app=nginx")["items"]
    pending = [p for p in pods if p["status"]["phase"] == "Pending"]
    assert len(pending) == 10
    events = kubectl("get", "events").stdout
    assert "FailedScheduling" in events and TOO_MANY in events
    described = kubectl("describe", "pod", pending[0]["metadata"]["name"]).stdout
    assert "FailedScheduling" in described and "Too many pods" in described
    ip = next(p["status"]["podIP"] for p in pods if p["status"]["phase"] == "Running")
    page = kubectl("exec", name1, "--", "curl", "-s", "-m", "5", f"http://{ip}/").stdout
    assert "Welcome to nginx!" in page
    # kubectl logs: nginx's access log names the netshoot pod's own address (no NAT on the way)
    served = next(p["metadata"]["name"] for p in pods if p["status"].get("podIP") == ip)
    source = kubectl.json("get", "pod", name1)["status"]["podIP"]
    access = kubectl("logs", served).stdout.splitlines()
    assert access[0] == "/docker-entrypoint.sh: Configuration complete; ready for start up"
    assert re.fullmatch(rf'{re.escape(source)} - - \[\d\d/\w{{3}}/\d{{4}}:[\d:]{{8}} \+0000\] "GET / HTTP/1.1" 200 \d+ '
                        r'"-" "curl/[\d.]+" "-"', access[-1]), access[-1]
    assert kubectl("logs", name1).stdout == ""                        # netshoot's tail -f writes nothing
    # kubectl logs -f: a request made after it started arrives on the open stream
    follower = subprocess.Popen([KUBECTL, "--cache-dir", kubectl.cache, "logs", "-f", "--tail=0", served],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env)
    try:
        # requests until one arrives on the open stream (kubectl may still be connecting for the first)
        deadline = time.monotonic() + 20
        ready: list = []
        while not ready and time.monotonic() < deadline:
            kubectl("exec", name1, "--", "curl", "-s", "-m", "5", "-A", "followed/1.0", f"http://{ip}/")
            ready, _, _ = select.select([follower.stdout], [], [], 1)
        assert ready, "no line on the followed log"
        line = follower.stdout.readline()
        assert line.startswith(f"{source} - - [") and '"followed/1.0" "-"' in line, line
    finally:
        follower.kill()
        follower.wait()
    aws_node = next(p["metadata"]["name"] for p in kubectl.json("get", "pod", "-n", "kube-system")["items"]
                    if p["metadata"]["name"].startswith("aws-node-"))
    entrypoint = kubectl("logs", "-n", "kube-system", aws_node).stdout.splitlines()
    assert entrypoint[:2] == ["Installed /host/opt/cni/bin/aws-cni", "Installed /host/opt/cni/bin/egress-cni"]
    assert entrypoint[-1].endswith('level=info msg="Successfully copied CNI plugin binary and config file."')
    # clean up as the lab does
    assert 'deployment.apps "nginx-deployment" deleted' in kubectl("delete", "deployment", "nginx-deployment").stdout
    wait_for(lambda: not kubectl.json("get", "pod", "-l", "app=nginx")["items"], timeout=60, what="nginx gone")


def test_pods_wait_in_container_creating_when_the_node_has_no_address_left(make_cluster):
    # MAX_ENI=1 leaves t3.medium 5 pod addresses while kubelet's max pods stays 17: the scheduler
    # keeps placing pods, the CNI cannot give them addresses
    runtime, kubectl = make_cluster(nodeGroups=[NodeGroupSpec(name="ng1", instanceType="t3.medium",
                                                              desiredCapacity=1)],
                                    cniEnv={"MAX_ENI": "1", "WARM_IP_TARGET": "2"})
    kubectl("apply", "-f", "-", input=NGINX)
    kubectl("scale", "deployment", "nginx-deployment", "--replicas=8")
    # 5 addresses: 2 go to CoreDNS, 3 to nginx; the other 5 nginx pods wait for an address
    wait_for(lambda: running(kubectl, "app=nginx", 3), timeout=90, what="3 nginx pods with addresses")
    pods = kubectl.json("get", "pod", "-l", "app=nginx")["items"]
    creating = [p for p in pods if p["status"]["phase"] == "Pending"]
    assert len(creating) == 5
    assert all(p["spec"].get("nodeName") for p in creating)            # scheduled, but no address
    table = kubectl("get", "pod", "-l", "app=nginx").stdout
    assert table.count("ContainerCreating") == 5
    events = kubectl("get", "events").stdout
    assert "FailedCreatePodSandBox" in events
    assert ('plugin type="aws-cni" name="aws-cni" failed (add): add cmd: failed to assign an IP address to '
            'container') in events
    waiting = kubectl("logs", creating[0]["metadata"]["name"], check=False)
    assert waiting.returncode == 1
    assert (f'container "nginx" in pod "{creating[0]["metadata"]["name"]}" is waiting to start: '
            f'ContainerCreating') in waiting.stderr


def test_the_cluster_resumes_after_a_supervisor_restart(make_cluster):
    runtime, kubectl = make_cluster(nodeGroups=[NodeGroupSpec(name="ng1", instanceType="t3.medium",
                                                              desiredCapacity=1)])
    kubectl("apply", "-f", "-", input=NETSHOOT)
    before = {p["metadata"]["name"]: p["status"]["podIP"] for p in
              wait_for(lambda: running(kubectl, "app=netshoot-pod", 3), what="netshoot")}
    runtime.stop()
    again = type(runtime)(runtime.spec).start()
    try:
        after = {p["metadata"]["name"]: p["status"]["podIP"] for p in
                 wait_for(lambda: running(kubectl, "app=netshoot-pod", 3), what="netshoot after restart")}
        assert after == before
        assert len(kubectl.json("get", "nodes")["items"]) == 1
        name = next(iter(after))
        other = list(after.values())[1]
        assert "1 received" in kubectl("exec", name, "--", "ping", "-c", "1", other).stdout
    finally:
        again.stop()


def test_up_status_kubeconfig_down_from_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, MINIEKS_STATE_ROOT=str(tmp_path / "state"))
    spec = tmp_path / "c.yaml"
    spec.write_text("name: cli1\nnodeGroups:\n- {name: ng1, instanceType: t3.medium, desiredCapacity: 1}\n")

    def minieks(*args):
        return subprocess.run([sys.executable, "-m", "minieks.cli", *args], capture_output=True, text=True, env=env,
                              timeout=300)
    try:
        up = minieks("up", "-f", str(spec))
        assert up.returncode == 0, up.stderr
        assert "cluster cli1: running" in up.stdout and "[minieks] cluster ready" in up.stderr
        assert minieks("up", "--cluster", "cli1").stdout.startswith("cluster cli1: running")   # idempotent
        kubeconfig = minieks("kubeconfig", "--cluster", "cli1").stdout.strip()
        assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"
        nodes = subprocess.run(["kubectl", "get", "nodes"], capture_output=True, text=True, timeout=60,
                               env=dict(env, KUBECONFIG=kubeconfig)).stdout
        assert " Ready " in nodes
        log = next((tmp_path / "state" / "mek-cli1" / "nodes").glob("*/ipamd.log")).read_text()
        assert "IP pool manager - max pods: 17," in log          # read from the Node through the API
        bad = minieks("up", "-f", str(spec).replace("c.yaml", "nope.yaml"))
        assert bad.returncode == 2 and "cannot read" in bad.stderr
    finally:
        down = minieks("down", "--cluster", "cli1")
    assert down.returncode == 0 and "cluster cli1 deleted" in down.stdout
    assert minieks("status", "--cluster", "cli1").stdout.startswith("cluster cli1: not created")
    assert "mek-cli1-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
