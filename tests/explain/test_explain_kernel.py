"""`gather` + `diagnose` on real clusters (root, network namespaces): each cause is produced for real
by the configuration or the EC2 failure that makes it on EKS, then named with its numbers.

Cluster A (1 × t3.medium, WARM_IP_TARGET=2): EC2 throttling (RequestLimitExceeded injected into the
in-process EC2), recovery to Running on an ENI and device, an exhausted subnet
(InsufficientFreeAddressesInSubnet), then a Deployment past max pods.
Cluster B (1 × t3.medium, MAX_ENI=1): the ENI limit with addresses gone before max pods, an address
held in its 30 s cooldown after a pod is deleted, and ipamd stopped.
Clusters C and D run small subnets dry with nothing injected: a /28 that cannot hold a second ENI,
and a /27 under prefix delegation where no aligned /28 is free at all.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time

import pytest

from minieks.cluster.runtime import ClusterRuntime
from minieks.cluster.spec import ClusterSpec, NodeGroupSpec, SubnetSpec
from minieks.explain import diagnose
from minieks.explain.gather import gather
from minieks.fabric import netns
from minieks.fabric.lab import cleanup

pytestmark = [pytest.mark.kernel,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="needs root, ip and network namespaces")]

THROTTLED = ("RequestLimitExceeded", "Request limit exceeded.")
SUBNET_FULL = ("InsufficientFreeAddressesInSubnet",
               "The specified subnet does not have enough free addresses to satisfy the request.")


@pytest.fixture
def cluster(tmp_path_factory, monkeypatch):
    """Start 1-node clusters in this process with a private state root; always stopped and removed.
    (A short root: the ipamd socket path must stay under 108 characters.)"""
    monkeypatch.setenv("MINIEKS_STATE_ROOT", str(tmp_path_factory.mktemp("st")))
    started: list[ClusterRuntime] = []

    def make(cni_env: dict[str, str], **spec_fields) -> ClusterRuntime:
        name = "x" + secrets.token_hex(3)
        spec = ClusterSpec(name=name, nodeGroups=[NodeGroupSpec(name="ng1", instanceType="t3.medium",
                                                                desiredCapacity=1)], cniEnv=cni_env, **spec_fields)
        runtime = ClusterRuntime(spec)
        started.append(runtime)
        return runtime.start()

    yield make
    for runtime in started:
        try:
            runtime.stop()
        finally:
            cleanup(runtime.spec.name)
            assert not netns.list_namespaces(runtime.spec.prefix)


def wait_for(predicate, timeout: float = 90, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def deploy(runtime: ClusterRuntime, replicas: int, name: str = "web") -> None:
    runtime.store.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "netshoot", "image": "nicolaka/netshoot",
                                                       "command": ["tail"], "args": ["-f", "/dev/null"]}],
                                       "terminationGracePeriodSeconds": 0}}}}, namespace="default")


def scale(runtime: ClusterRuntime, replicas: int, name: str = "web") -> None:
    runtime.store.mutate("deployments", "default", name, lambda d: d["spec"].update(replicas=replicas))


def pods(runtime: ClusterRuntime, app: str = "web") -> list[dict]:
    found, _ = runtime.store.list("pods", namespace="default")
    return [p for p in found if (p["metadata"].get("labels") or {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")]


def phase(p: dict) -> str:
    return (p.get("status") or {}).get("phase", "")


def events_of(runtime: ClusterRuntime, pod: dict, reason: str) -> list[dict]:
    found, _ = runtime.store.list("events", namespace="default")
    return [e for e in found if e["involvedObject"]["name"] == pod["metadata"]["name"] and e["reason"] == reason]


def ipamd_log(runtime: ClusterRuntime) -> str:
    node = next(iter(runtime.lab.nodes.values()))
    return (runtime.state / "nodes" / node.instance_id / "ipamd.log").read_text()


def waiting_for_address(runtime: ClusterRuntime, text: str = "failed to assign an IP address") -> list[dict]:
    """Pods bound to the node whose sandbox failed with `text`."""
    return [p for p in pods(runtime) if phase(p) == "Pending" and p["spec"].get("nodeName")
            and any(text in e["message"] for e in events_of(runtime, p, "FailedCreatePodSandBox"))]


def explain(runtime: ClusterRuntime, pod: dict):
    d = diagnose(gather(runtime.spec.name, "default", pod["metadata"]["name"]))
    print(d.render())
    return d


def test_throttling_recovery_subnet_exhaustion_and_max_pods(cluster):
    runtime = cluster({"WARM_IP_TARGET": "2"})
    ec2 = runtime.lab.ec2_service
    wait_for(lambda: len([p for p in runtime.store.list("pods", namespace="kube-system")[0]
                          if phase(p) == "Running"]) == 4, what="aws-node, kube-proxy and CoreDNS running")

    # (c1) EC2 throttles every address call: pods past the warm addresses wait, ipamd says why
    ec2.faults.add("AssignPrivateIpAddresses", *THROTTLED)
    ec2.faults.add("CreateNetworkInterface", *THROTTLED)
    deploy(runtime, 4)
    stuck = wait_for(lambda: waiting_for_address(runtime) if "RequestLimitExceeded" in ipamd_log(runtime) else None,
                     what="a pod waiting while EC2 throttles")
    d = explain(runtime, stuck[0])
    assert d.state == "ContainerCreating"
    assert d.codes[0] == "throttled"
    assert d.causes[0].numbers["errors"].get("AssignPrivateIpAddresses", 0) >= 1
    assert "RequestLimitExceeded" in d.causes[0].title
    assert any(e.source == "kubelet" and "FailedCreatePodSandBox" in e.text for e in d.timeline)

    # recovery: the same pod runs, on an ENI and device, and the wait is remembered
    ec2.faults.clear()
    wait_for(lambda: all(phase(p) == "Running" for p in pods(runtime)) and len(pods(runtime)) == 4,
             what="web pods running after throttling stops")
    d = explain(runtime, stuck[0])
    assert d.codes == ["running"]
    ip = runtime.store.get("pods", "default", stuck[0]["metadata"]["name"])["status"]["podIP"]
    assert f"with {ip} (ENI eni-" in d.headline and ", device " in d.headline
    assert "FailedCreatePodSandBox" in d.causes[0].evidence[0]

    # (c2) the subnet has no address left for this node
    ec2.faults.add("AssignPrivateIpAddresses", *SUBNET_FULL)
    ec2.faults.add("CreateNetworkInterface", *SUBNET_FULL)
    scale(runtime, 9)
    stuck = wait_for(lambda: waiting_for_address(runtime) if "subnet doesn't seem to have enough" in
                     ipamd_log(runtime) else None, what="a pod waiting on a full subnet")
    d = explain(runtime, stuck[0])
    assert d.codes == ["subnet-exhausted"]             # the throttling is over: EC2 answered otherwise since
    cause = d.causes[0]
    assert cause.numbers["subnet"].startswith("subnet-") and cause.numbers["cidr"] == "192.168.1.0/24"
    assert isinstance(cause.numbers["available"], int)
    assert cause.numbers["retry_after"] > time.time()                 # ipamd's 2-minute wait
    text = d.render()
    assert "Consider using new subnet or carve a reserved range using create-subnet-cidr-reservation" in text
    assert "it waits 2m0s after an InsufficientCidr error" in text

    # (a) max pods: 17 on a t3.medium, 2 of them host-network; the rest stay Pending
    ec2.faults.clear()
    scale(runtime, 20)
    pending = wait_for(lambda: [p for p in pods(runtime) if not p["spec"].get("nodeName")
                                and events_of(runtime, p, "FailedScheduling")], what="pods past max pods")
    d = explain(runtime, pending[0])
    assert d.state == "Pending" and d.node is None
    assert d.codes == ["max-pods"]
    assert d.causes[0].numbers["full_nodes"] == 1 and list(d.causes[0].numbers["max_pods"].values()) == [17]
    text = d.render()
    assert "0/1 nodes are available: 1 Too many pods." in text
    assert "17/17 pods" in text and "max pods 17 on t3.medium = 3 ENIs × (6 − 1) + 2" in text


def test_eni_limit_cooldown_and_ipamd_not_ready(cluster):
    runtime = cluster({"MAX_ENI": "1"})
    deploy(runtime, 5)
    # (b) 5 addresses on the one ENI: 2 for CoreDNS, 3 for web; 2 web pods wait although max pods is 17
    stuck = wait_for(lambda: (len(waiting_for_address(runtime)) == 2 and
                              len([p for p in pods(runtime) if phase(p) == "Running"]) == 3
                              and waiting_for_address(runtime)), what="3 running, 2 waiting for an address")
    d = explain(runtime, stuck[0])
    assert d.codes == ["eni-limit"]
    cause = d.causes[0]
    assert cause.title == "ENI limit reached: 1/1 ENIs, 5/5 addresses in use, max pods 17"
    assert (cause.numbers["enis"], cause.numbers["max_eni"], cause.numbers["ip_max"]) == (1, 1, 5)
    assert cause.numbers["max_eni_env"] == 1 and cause.numbers["pods_on_node"] == 9
    assert "MAX_ENI=1 caps ipamd at 1 ENI(s); t3.medium allows 3" in cause.evidence

    # IP cooldown: a deleted pod's address is free but cannot be reused for 30 s
    victim = next(p for p in pods(runtime) if phase(p) == "Running")
    runtime.store.delete("pods", "default", victim["metadata"]["name"], grace_period=0)

    def cooling():
        d = diagnose(gather(runtime.spec.name, "default", stuck[0]["metadata"]["name"]))
        return d if d.codes and d.codes[0] == "ip-cooldown" else None
    d = wait_for(cooling, timeout=25, what="the freed address in its cooldown")
    print(d.render())
    assert d.codes[:2] == ["ip-cooldown", "eni-limit"]
    assert d.causes[0].numbers["cooldown"] == 1
    assert 0 < d.causes[0].numbers["usable_at"] - time.time() <= 30

    # ipamd stopped: the plugin cannot reach its socket
    node = next(iter(runtime.lab.nodes.values()))
    runtime.lab.stop_ipamd(node)
    stuck = wait_for(lambda: waiting_for_address(runtime, "Error received from AddNetwork gRPC call"),
                     timeout=60, what="a sandbox failing without ipamd")
    d = explain(runtime, stuck[0])
    assert d.codes[0] == "ipamd-not-ready"
    assert d.causes[0].numbers["introspection_unreachable"] is True
    assert "is not ready on the node" in d.causes[0].title


def test_small_subnets_run_dry_for_real(cluster):
    # a /28 has 11 usable addresses: the node's own, 5 on its primary ENI, and 5 left, one short of a
    # second ENI (its primary + 5): EC2 answers InsufficientFreeAddressesInSubnet
    runtime = cluster({}, subnets=[SubnetSpec(name="tiny", cidr="192.168.1.0/28", zone="ap-northeast-2a")])
    deploy(runtime, 5)
    stuck = wait_for(lambda: waiting_for_address(runtime) if "subnet doesn't seem to have enough" in
                     ipamd_log(runtime) else None, what="a pod waiting on a /28")
    d = explain(runtime, stuck[0])
    assert d.codes[0] == "subnet-exhausted"
    cause = d.causes[0]
    assert (cause.numbers["cidr"], cause.numbers["available"], cause.numbers["usable"]) == ("192.168.1.0/28", 5, 11)
    assert cause.numbers["errors"].get("CreateNetworkInterface", 0) >= 1
    assert "a new ENI needs 6 addresses (its primary + 5 secondary); the subnet has 5" in cause.evidence


def test_no_aligned_prefix_in_a_small_subnet_under_prefix_delegation(cluster):
    # a /27's two /28 blocks each hold an address AWS keeps (.0-.3, .31): 26 addresses free, no prefix
    runtime = cluster({"ENABLE_PREFIX_DELEGATION": "true"},
                      subnets=[SubnetSpec(name="small", cidr="192.168.1.0/27", zone="ap-northeast-2a")])
    deploy(runtime, 2)
    stuck = wait_for(lambda: waiting_for_address(runtime) if "InsufficientCidrBlocks" in ipamd_log(runtime)
                     else None, what="a pod waiting for a prefix")
    d = explain(runtime, stuck[0])
    assert d.codes[0] == "no-free-prefix"
    cause = d.causes[0]
    assert cause.numbers["available"] == 26
    text = d.render()
    assert ("26 addresses are free but no whole, aligned /28 is: 192.168.1.0/27 has 2 aligned /28 blocks, the first "
            "and the last hold addresses AWS keeps (the first four, the last), so at most 0 can ever be a "
            "prefix") in text
    assert "create-subnet-cidr-reservation" in text and "--reservation-type prefix" in text


def test_the_warm_pool_refilling_while_a_new_eni_attaches(cluster):
    # default WARM_ENI_TARGET=1: 2 ENIs × 5 addresses once CoreDNS runs; 10 more pods need a third ENI,
    # whose AttachNetworkInterface EC2 answers slowly: the last pods wait while it is in flight
    runtime = cluster({})
    node = next(iter(runtime.lab.nodes.values()))

    def attached() -> int:
        found = runtime.lab.ec2.describe_network_interfaces(Filters=[
            {"Name": "attachment.instance-id", "Values": [node.instance_id]},
            {"Name": "attachment.status", "Values": ["attached"]}])["NetworkInterfaces"]
        return len(found)
    wait_for(lambda: attached() == 2, what="the warm second ENI attached")
    runtime.lab.ec2_service.faults.add("AttachNetworkInterface", delay=30.0, count=1)
    deploy(runtime, 10)
    stuck = wait_for(lambda: waiting_for_address(runtime) if ipamd_log(runtime).count("Created a new ENI") == 2
                     else None, what="a pod waiting while the third ENI attaches")
    d = explain(runtime, stuck[0])
    assert d.codes == ["pool-refilling"]
    evidence = "\n".join(d.causes[0].evidence)
    assert "every attached ENI is full (2 × 5 addresses): ipamd's next step is a new ENI" in evidence
    assert "was created for this node and is available, not attached yet: AttachNetworkInterface in flight" in evidence
    assert "ipamd: Created a new ENI: eni-" in evidence
