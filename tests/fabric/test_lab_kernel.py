"""A lab with real ipamd processes and CNI ADDs behaves as EKS: pods talk without NAT, a pod on a
secondary ENI uses eth1 inside the VPC and eth0 outside, SNAT hides pods unless external SNAT is
on, taking away any one piece (rule 1024, loose rp_filter, the SNAT rule) breaks what it should,
a t3.medium holds 15 pods, and nothing survives `kill -9` plus cleanup.

Needs root. Tests that only look share one module lab (IGW in route mode, so the stand-in internet
shows the sources it gets); tests that change a node get a lab of their own. Every lab is removed
by a finalizer, whether the test passed or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minieks.cni.runtime import CniCallError
from minieks.fabric import netns
from minieks.fabric.lab import STATE_ROOT_ENV, Lab, LabNode, LabPod, cleanup, state_dir
from tests.fabric.conftest import kernel_only

pytestmark = kernel_only

VPC = "192.168.0.0/16"
SUBNETS = {"a": ("192.168.1.0/24", "ap-northeast-2a"), "b": ("192.168.2.0/24", "ap-northeast-2b")}
INTERNET = "203.0.113.10"
NO_ADDRESS = "add cmd: failed to assign an IP address to container"
REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------ labs
@pytest.fixture(scope="module")
def state_root(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("mek-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STATE_ROOT_ENV, str(root))
        yield root


def lab_processes(name: str) -> list[int]:
    """Processes whose command line names the lab's socket directory (its ipamds and CNI executors)."""
    needle = f"/run/mek-{name}/".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


@contextlib.contextmanager
def new_lab(igw_mode: str = "eip") -> Iterator[Lab]:
    """A lab with the VPC made; closed and removed afterwards, checked to leave nothing."""
    name = f"t{secrets.token_hex(3)}"
    lab = None
    try:
        lab = Lab(name, igw_mode=igw_mode)
        lab.create_vpc(VPC, SUBNETS)
        yield lab
    finally:
        try:
            if lab:
                lab.close()
        finally:
            cleanup(name)
    assert netns.list_namespaces(f"mek-{name}-") == []
    assert lab_processes(name) == []


def device(pod: LabPod) -> int:
    """The ENI device number the CNI result records (the dummy interface's `sandbox` field)."""
    dummy = next(i for i in pod.result["interfaces"] if i["name"].startswith("dummy"))
    return int(dummy["sandbox"])


def free_in_ec2(lab: Lab, node: LabNode, used: int) -> int:
    enis = lab.ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id",
                                                          "Values": [node.instance_id]}])["NetworkInterfaces"]
    return sum(len(e["PrivateIpAddresses"]) - 1 for e in enis) - used


def add_pod_retrying(lab: Lab, node: LabNode, name: str, used: int, deadline: float = 45.0) -> LabPod:
    """ADD as kubelet does: on "no address" wait (bounded) for ipamd's pool loop, then try again."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            return lab.add_pod(node, "default", name)
        except CniCallError as err:
            if err.msg != NO_ADDRESS or time.monotonic() > give_up:
                raise
        time.sleep(0.3)
        while free_in_ec2(lab, node, used) <= 0 and time.monotonic() < give_up:
            time.sleep(0.2)


def fill_until_secondary(lab: Lab, node: LabNode, prefix: str) -> tuple[LabPod, LabPod]:
    """Add pods until one lands on the secondary ENI: (a pod on eth0, the pod on eth1)."""
    pods: list[LabPod] = []
    for i in range(10):
        pods.append(add_pod_retrying(lab, node, f"{prefix}{i}", used=len(pods)))
        if device(pods[-1]) == 1:
            on_eth0 = next(p for p in pods if device(p) == 0)
            assert pods[-1].result["interfaces"][1]["mac"] == "2"       # its route table
            return on_eth0, pods[-1]
    raise AssertionError(f"no pod on eth1 after {len(pods)}: {[device(p) for p in pods]}")


@pytest.fixture(scope="module")
def shared(state_root) -> Iterator[dict]:
    """Route mode; n1 (subnet a) with a pod on eth0 and one on eth1, n2 (subnet b) with one pod,
    n3 (subnet a, AWS_VPC_K8S_CNI_EXTERNALSNAT=true) with one pod."""
    with new_lab("route") as lab:
        n1 = lab.add_node("t3.medium", "a")
        n2 = lab.add_node("t3.medium", "b")
        n3 = lab.add_node("t3.medium", "a", cni_env={"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"})
        pa, pb = fill_until_secondary(lab, n1, "a")
        pc = lab.add_pod(n2, "default", "c")
        pe = lab.add_pod(n3, "default", "e")
        yield {"lab": lab, "n1": n1, "n2": n2, "n3": n3, "pa": pa, "pb": pb, "pc": pc, "pe": pe}


@pytest.fixture
def own_lab(state_root) -> Iterator[Lab]:
    """A lab of its own (IGW in eip mode, as on AWS) for a test that changes a node."""
    with new_lab("eip") as lab:
        yield lab


# ------------------------------------------------------------------------------ observing
@contextlib.contextmanager
def capture(namespace: str, interface: str = "any", expr: str = "icmp") -> Iterator[list[str]]:
    """tcpdump in a lab namespace; the list fills with its lines when the block ends."""
    proc = netns.popen(namespace, ["tcpdump", "-nn", "-l", "--immediate-mode", "-i", interface, expr],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    try:
        seen, give_up = b"", time.monotonic() + 10
        while b"listening on" not in seen:
            ready, _, _ = select.select([proc.stderr], [], [], max(0.0, give_up - time.monotonic()))
            chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
            if not chunk:
                raise AssertionError(f"tcpdump in {namespace} did not start: {seen!r}")
            seen += chunk
        yield lines
        time.sleep(0.2)                             # let the last packets reach tcpdump
    finally:
        proc.send_signal(signal.SIGINT)             # flushes what it buffered
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        lines.extend(line for line in out.decode(errors="replace").splitlines() if line.strip())


def ping(lab: Lab, pod: LabPod, target: str) -> subprocess.CompletedProcess:
    return lab.pod_exec(pod, ["ping", "-c", "1", "-W", "1", target], check=False)


def ttl(done: subprocess.CompletedProcess) -> int:
    return int(re.search(r"ttl=(\d+)", done.stdout).group(1))


def seen_by_internet(lab: Lab, pod: LabPod) -> str:
    """The client address the stand-in HTTP host saw for a request from the pod."""
    page = lab.pod_exec(pod, ["curl", "-s", "-m", "5", f"http://{INTERNET}/"]).stdout
    return re.search(r"^client (\S+) ", page, re.M).group(1)


def icmp(lines: list[str], src: str, dst: str, kind: str = "request", where: str = "") -> list[str]:
    pattern = re.compile(rf"{where}.*IP {re.escape(src)} > {re.escape(dst)}: ICMP echo {kind}")
    return [line for line in lines if pattern.search(line)]


def rp_filter_drops(namespace: str) -> int:
    """TcpExtIPReversePathFilter of a namespace (read from /proc: nstat would write a history file)."""
    text = netns.run(namespace, ["cat", "/proc/net/netstat"]).stdout.splitlines()
    names, values = next((a.split(), b.split()) for a, b in zip(text, text[1:]) if a.startswith("TcpExt:"))
    return int(values[names.index("IPReversePathFilter")])


# ---------------------------------------------------------------------- pod to pod, no NAT
def test_pods_on_one_node_talk_through_the_node_only(shared):
    lab, pa, pb = shared["lab"], shared["pa"], shared["pb"]
    with capture(shared["n1"].namespace) as node_seen, capture(lab.names.vpc) as vpc_seen:
        done = ping(lab, pa, pb.ip)
    assert done.returncode == 0 and ttl(done) == 63                  # one hop: the node
    assert icmp(node_seen, pa.ip, pb.ip) and icmp(node_seen, pb.ip, pa.ip, "reply")
    assert vpc_seen == []                                             # never leaves the node


def test_pods_on_two_nodes_talk_through_the_vpc_without_nat(shared):
    lab, pa, pc = shared["lab"], shared["pa"], shared["pc"]
    with capture(lab.names.vpc) as seen:
        done = ping(lab, pa, pc.ip)
    assert done.returncode == 0 and ttl(done) == 62                   # two nodes, no VPC hop
    assert icmp(seen, pa.ip, pc.ip, where=r"n1e0\s+In ") and icmp(seen, pa.ip, pc.ip, where=r"n2e0\s+Out ")
    assert icmp(seen, pc.ip, pa.ip, "reply", r"n2e0\s+In ") and icmp(seen, pc.ip, pa.ip, "reply", r"n1e0\s+Out ")
    assert all(pa.ip in line and pc.ip in line for line in seen if "ICMP" in line)


def test_a_secondary_eni_pod_uses_eth1_in_the_vpc_and_eth0_outside(shared):
    lab, n1, pb, pc = shared["lab"], shared["n1"], shared["pb"], shared["pc"]
    rules = lab.node_exec(n1, ["ip", "rule"]).stdout
    assert f"1536:\tfrom {pb.ip} lookup 2" in rules and "1024:\tfrom all fwmark 0x80/0x80 lookup main" in rules

    with capture(n1.namespace, "eth1") as eth1, capture(n1.namespace, "eth0") as eth0:
        assert ping(lab, pb, pc.ip).returncode == 0
    assert icmp(eth1, pb.ip, pc.ip) and icmp(eth1, pc.ip, pb.ip, "reply")
    assert eth0 == []

    with capture(n1.namespace, "eth1") as eth1, capture(n1.namespace, "eth0") as eth0:
        assert ping(lab, pb, INTERNET).returncode == 0
    assert icmp(eth0, n1.primary_ip, INTERNET) and icmp(eth0, INTERNET, n1.primary_ip, "reply")   # SNAT
    assert eth1 == []
    flows = lab.node_exec(n1, ["conntrack", "-L", "-p", "icmp", "-s", pb.ip]).stdout
    assert re.search(rf"src={re.escape(pb.ip)} dst={INTERNET} .* dst={re.escape(n1.primary_ip)} .*mark=128", flows)


# ------------------------------------------------------------------------- to the internet
def test_route_mode_the_internet_sees_the_node_address_or_with_external_snat_the_pod(shared):
    lab, n1, n3, pa, pe = shared["lab"], shared["n1"], shared["n3"], shared["pa"], shared["pe"]
    assert f"{VPC} via 203.0.113.1 dev eth0" in netns.run(lab.names.inet, ["ip", "route"]).stdout
    snat = (f'-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL '
            f"-j SNAT --to-source {n1.primary_ip} --random-fully")
    assert snat in lab.node_exec(n1, ["iptables", "-t", "nat", "-S"]).stdout.splitlines()
    assert seen_by_internet(lab, pa) == n1.primary_ip                # and the answer came back
    assert ping(lab, pa, INTERNET).returncode == 0

    assert '"AWS, SNAT"' not in lab.node_exec(n3, ["iptables", "-t", "nat", "-S"]).stdout
    assert seen_by_internet(lab, pe) == pe.ip                        # external SNAT: the pod itself
    assert ping(lab, pe, INTERNET).returncode == 0


def test_eip_mode_the_internet_sees_the_public_address_and_without_snat_the_igw_drops(own_lab):
    lab = own_lab
    node = lab.add_node("t3.medium", "a")
    pod = lab.add_pod(node, "default", "web")
    public = lab.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"][0]["Instances"][0][
        "PublicIpAddress"]
    assert f"-A POSTROUTING -s {node.primary_ip}/32 -o inet0 -j SNAT --to-source {public}" in netns.run(
        lab.names.igw, ["iptables", "-t", "nat", "-S"]).stdout                 # 1:1 with the primary
    assert seen_by_internet(lab, pod) == public

    # eip mode makes "breaks" observable: a pod source has no public mapping, so the IGW drops it
    # (in route mode the stand-in would simply answer the pod address)
    lab.node_exec(node, ["iptables", "-t", "nat", "-F", "AWS-SNAT-CHAIN-0"])
    lab.node_exec(node, ["conntrack", "-F"], check=False)
    before = igw_drops(lab)
    with capture(lab.names.inet) as internet:
        assert ping(lab, pod, INTERNET).returncode != 0
    assert internet == [] and igw_drops(lab) > before


def igw_drops(lab: Lab) -> int:
    listing = netns.run(lab.names.igw, ["iptables", "-vnxL", "FORWARD"]).stdout
    return int(next(line.split()[0] for line in listing.splitlines() if "IGW: no public IP mapping" in line))


# ------------------------------------------------------------------- taking a piece away
def test_without_rule_1024_a_secondary_eni_pod_loses_the_internet(own_lab):
    lab = own_lab
    node = lab.add_node("t3.medium", "a")
    pa, pb = fill_until_secondary(lab, node, "p")
    assert ping(lab, pb, INTERNET).returncode == 0
    # VPC traffic first, as a busy node has had: eth1 then knows its gateway's MAC (an ARP request
    # sent later from the node's primary address would go unanswered on eth1, hiding the packet)
    assert ping(lab, pb, lab.fabric.resolver).returncode == 0

    lab.node_exec(node, ["ip", "rule", "del", "pref", "1024"])
    before = rp_filter_drops(lab.names.vpc)
    with capture(node.namespace, "eth1") as eth1:
        assert ping(lab, pb, INTERNET).returncode != 0
    assert icmp(eth1, node.primary_ip, INTERNET)             # SNATed, but out of the wrong ENI
    assert rp_filter_drops(lab.names.vpc) > before            # EC2's source/destination check
    assert ping(lab, pa, INTERNET).returncode == 0            # eth0 pods do not need the rule

    lab.node_exec(node, ["ip", "rule", "add", "fwmark", "0x80/0x80", "lookup", "main", "pref", "1024"])
    assert ping(lab, pb, INTERNET).returncode == 0


def test_strict_rp_filter_on_eth0_breaks_a_secondary_eni_pods_internet(own_lab):
    lab = own_lab
    node = lab.add_node("t3.medium", "a")
    pa, pb = fill_until_secondary(lab, node, "p")
    assert netns.read_sysctl(node.namespace, "net.ipv4.conf.eth0.rp_filter") == "2"   # aws-vpc-cni-init
    assert ping(lab, pb, INTERNET).returncode == 0

    lab.node_exec(node, ["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=1"])
    assert ping(lab, pb, INTERNET).returncode != 0            # the reply fails the check via table 2
    assert ping(lab, pa, INTERNET).returncode == 0
    lab.node_exec(node, ["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=2"])
    assert ping(lab, pb, INTERNET).returncode == 0


# ------------------------------------------------------------------------------------ scale
def test_three_t3_medium_nodes_take_15_pods_each_and_refuse_the_16th(own_lab):
    lab = own_lab
    nodes = [lab.add_node("t3.medium", zone) for zone in ("a", "b", "a")]

    def fill(index: int) -> list[LabPod]:
        node, pods = nodes[index], []
        for i in range(15):
            pods.append(add_pod_retrying(lab, node, f"n{index}-{i}", used=len(pods)))
        return pods

    with ThreadPoolExecutor(len(nodes)) as pool:        # one kubelet per node
        filled = list(pool.map(fill, range(len(nodes))))
    for node, pods in zip(nodes, filled):
        assert len({p.ip for p in pods}) == 15 and sorted({device(p) for p in pods}) == [0, 1, 2]
        pool_state = json.loads(lab.node_exec(node, ["curl", "-s", "http://127.0.0.1:61679/v1/enis"]).stdout)["0"]
        assert (pool_state["TotalIPs"], pool_state["AssignedIPs"]) == (15, 15)
        assert free_in_ec2(lab, node, 15) == 0
        before = netns.list_namespaces(node.namespace + "-")
        with pytest.raises(CniCallError) as failed:
            lab.add_pod(node, "default", f"extra-{node.instance_id}")
        assert failed.value.msg == NO_ADDRESS
        assert netns.list_namespaces(node.namespace + "-") == before and len(before) == 15


# ---------------------------------------------------------------------------------- the CLI
def minieks(*argv: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minieks.cli", *argv], capture_output=True, text=True,
                          input=input, timeout=60, cwd=REPO)


def test_node_exec_and_pod_exec_reach_the_namespaces_and_pass_exit_codes(shared):
    lab, n1, pa = shared["lab"], shared["n1"], shared["pa"]
    for key in (n1.instance_id, n1.namespace, n1.primary_ip, "n1"):
        done = minieks("node", "exec", "--lab", lab.name, key, "--", "ip", "-4", "-o", "addr", "show", "eth0")
        assert done.returncode == 0 and f"inet {n1.primary_ip}/24" in done.stdout, key
    assert minieks("node", "exec", "--lab", lab.name, "n1", "--", "sh", "-c", "exit 3").returncode == 3
    done = minieks("pod", "exec", "--lab", lab.name, f"default/{pa.name}", "--", "ip", "-4", "-o", "addr")
    assert f"inet {pa.ip}/32" in done.stdout
    assert minieks("pod", "exec", "--lab", lab.name, pa.name, "--", "cat", input="through\n").stdout == "through\n"

    missing = minieks("node", "exec", "--lab", lab.name, "i-0000000000000000", "--", "true")
    assert missing.returncode == 2
    assert f"has no node 'i-0000000000000000'; its nodes: {n1.instance_id}" in missing.stderr
    missing = minieks("pod", "exec", "--lab", lab.name, "kube-system/nope", "--", "true")
    assert missing.returncode == 2 and "has no pod 'kube-system/nope'" in missing.stderr


# ------------------------------------------------------------------------------ after a crash
CRASHING_LAB = """
import json, sys, time
from minieks.fabric import netns
from minieks.fabric.lab import Lab
lab = Lab(sys.argv[1])
lab.create_vpc("192.168.0.0/16", {"a": ("192.168.1.0/24", "ap-northeast-2a")})
node = lab.add_node("t3.medium", "a")
pod = lab.add_pod(node, "default", "victim")
sleeper = netns.popen(pod.netns, ["sleep", "600"])
print(json.dumps({"pod": pod.netns, "sleeper": sleeper.pid}), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["api", "cli"])
def test_cleanup_after_kill_9_leaves_no_namespace_and_no_process(state_root, how):
    name = f"t{secrets.token_hex(3)}"
    child = subprocess.Popen([sys.executable, "-c", CRASHING_LAB, name], stdout=subprocess.PIPE, cwd=REPO)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the crashing lab did not start"
        started = json.loads(child.stdout.readline())
        pid_files = sorted((state_dir(name) / "pids").glob("*.pid"))
        assert [f.name.split("-")[0] for f in pid_files] == ["cni", "ipamd"]      # the node's executor and ipamd
        recorded = sorted(json.loads(f.read_text())["pid"] for f in pid_files)
        assert sorted(lab_processes(name)) == recorded
        assert len(netns.list_namespaces(f"mek-{name}-")) == 5          # vpc igw inet n1 and the pod

        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        if how == "api":
            removed = cleanup(name)
        else:
            done = minieks("cleanup", "--lab", name)
            assert done.returncode == 0, done.stderr
            removed = re.findall(r"^removed namespace (\S+)$", done.stdout, re.M)
            assert f"removed {state_dir(name)}" in done.stdout
        assert started["pod"] in removed and f"mek-{name}-vpc" in removed
        assert netns.list_namespaces(f"mek-{name}-") == []
        assert not [d for d in (os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else []) if d.startswith(f"mek-{name}-")]
        assert lab_processes(name) == [] and gone(started["sleeper"])
        assert not state_dir(name).exists()
        assert cleanup(name) == []                                       # idempotent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        cleanup(name)


def gone(pid: int, wait: float = 2.0) -> bool:
    """Not running within `wait` seconds (a zombie left for init to reap counts as gone)."""
    give_up = time.monotonic() + wait
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)
