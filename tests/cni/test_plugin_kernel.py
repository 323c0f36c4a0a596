"""aws-cni ADD/DEL/CHECK for real: the executable runs in a node namespace (`ip netns exec`) against
an ipamd gRPC server on a unix socket, and the pod and node end up as upstream's (spec §7.3, §7.4)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from minieks.clock import RealClock
from minieks.cni import gojson
from minieks.fabric import netns
from minieks.ipamd.awsutils import EniInfo
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.rpc_handler import RpcHandler
from minieks.ipamd.rpc_server import RpcServer
from minieks.netsetup.names import host_veth_name
from minieks.netsetup.node_network import KernelNodeNetwork
from tests.netsetup import kernel_lab
from tests.netsetup.kernel_lab import (ENI1_IP, ETH0_SECONDARY, ETH1_SECONDARY, GATEWAY, OUTSIDE_HOST,
                                       PRIMARY_IP, SUBNET, VPC_CIDR, NodeLab)

pytestmark = pytest.mark.kernel

AWS_CNI = Path(sys.executable).with_name("aws-cni")
CONF = {"cniVersion": "0.4.0", "name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001",
        "podSGEnforcingMode": "strict", "pluginLogFile": "/var/log/aws-routed-eni/plugin.log",
        "pluginLogLevel": "DEBUG", "capabilities": {"io.kubernetes.cri.pod-annotations": True},
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {}}}
BASE_NODE_RULES = ["0:\tfrom all lookup local", "1024:\tfrom all fwmark 0x80/0x80 lookup main",
                   "32765:\tfrom 192.168.1.20 lookup 2", "32766:\tfrom all lookup main",
                   "32767:\tfrom all lookup default"]
MAIN_ROUTES = ["default via 192.168.1.1 dev eth0",
               "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.10"]
CARD1_IP = "192.168.1.80"
LAYOUTS = {"both": (ETH0_SECONDARY, ETH1_SECONDARY), "eth1-only": ((), ETH1_SECONDARY), "empty": ((), ())}


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


@dataclass
class CniNode:
    """A node with ipamd's host set-up done, ipamd serving, and a way to exec the plugin in it."""

    lab: NodeLab
    datastore: Datastore
    socket: str
    server: RpcServer | None = None
    results: dict[str, str] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return self.lab.node

    def ip(self, ns: str, *argv: str) -> list[str]:
        return lines(netns.run(ns, ["ip", *argv]).stdout)

    def call(self, command: str, pod: str, container: str, conf: dict | None = None,
             netns_path: str | None = None, ifname: str = "eth0") -> tuple[int, str]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_IFNAME": ifname,
               "CNI_NETNS": f"/run/netns/{self.lab.prefix}pod-{pod}" if netns_path is None else netns_path,
               "CNI_PATH": str(AWS_CNI.parent),
               "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};"
                           f"K8S_POD_INFRA_CONTAINER_ID={container};K8S_POD_UID=uid-{pod}",
               "MINIEKS_IPAMD_SOCKET": self.socket, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        done = subprocess.run(["ip", "netns", "exec", self.node, str(AWS_CNI)], env=env, capture_output=True,
                              text=True, input=json.dumps(conf or CONF), timeout=60)
        return done.returncode, done.stdout

    def add(self, pod: str, **kwargs) -> tuple[int, str]:
        if kwargs.get("netns_path") is None and not netns.exists(f"{self.lab.prefix}pod-{pod}"):
            self.lab.pod(pod)
        code, out = self.call("ADD", pod, f"sandbox-{pod}", **kwargs)
        if code == 0:
            self.results[pod] = out
        return code, out

    def delete(self, pod: str) -> tuple[int, str]:
        conf = dict(CONF)
        if pod in self.results:
            conf["prevResult"] = json.loads(self.results[pod])
        return self.call("DEL", pod, f"sandbox-{pod}", conf)

    def check(self, pod: str) -> tuple[int, str]:
        return self.call("CHECK", pod, f"sandbox-{pod}", {**CONF, "prevResult": json.loads(self.results[pod])})

    def host_veths(self) -> list[str]:
        return [line.split(":")[1].strip().split("@")[0] for line in self.ip(self.node, "-o", "link")
                if ": eni" in line]

    def stop_ipamd(self) -> None:
        if self.server is not None:
            self.server.stop(grace=0)
            self.server = None


def _datastores(layout: str) -> list[Datastore]:
    """Card 0 with eth0/eth1 as the layout says; "multi-nic" adds card 1 (one ENI, table 10100)."""
    eth0_ips, eth1_ips = LAYOUTS["both" if layout == "multi-nic" else layout]
    ds = Datastore(RealClock())
    ds.add_eni("eni-0", 0, is_primary=True)
    ds.add_eni("eni-1", 1)
    for eni, ips in (("eni-0", eth0_ips), ("eni-1", eth1_ips)):
        for ip in ips:
            ds.add_ipv4_cidr(eni, f"{ip}/32")
    if layout != "multi-nic":
        return [ds]
    card1 = Datastore(RealClock(), network_card=1)
    card1.add_eni("eni-c1", 0)
    card1.add_ipv4_cidr("eni-c1", f"{CARD1_IP}/32")
    return [ds, card1]


@pytest.fixture
def cni_node(request):
    """Minimal node + SetupHostNetwork + SetupENINetwork(eth1) + ipamd on a unix socket; all removed."""
    if AWS_CNI.exists() is False:
        pytest.skip("aws-cni is not installed in the virtualenv (pip install -e .)")
    layout = getattr(request, "param", "both")
    lab = kernel_lab.build()
    tmp = tempfile.mkdtemp(prefix=lab.prefix)
    node = None
    try:
        config = IpamdConfig(enable_ipv4=True, enable_multi_nic=layout == "multi-nic")
        network = KernelNodeNetwork(lab.node, config)
        network.setup_host_network([VPC_CIDR], PRIMARY_IP, lab.eth0_mac)
        network.setup_eni_network(EniInfo("eni-1", lab.eth1_mac, 1, 0, ENI1_IP, "subnet-1", SUBNET), 2)
        stores = _datastores(layout)
        node = CniNode(lab, stores[0], f"{tmp}/ipamd.sock")
        node.server = RpcServer(RpcHandler(stores, config, vpc_cidrs=[VPC_CIDR]), socket_path=node.socket)
        node.server.start()
        yield node
    finally:
        if node is not None:
            node.stop_ipamd()
        lab.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        assert not netns.list_namespaces(lab.prefix)


def ping(ns: str, target: str, size: int | None = None, count: int = 2) -> subprocess.CompletedProcess:
    argv = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2"]
    if size is not None:
        argv += ["-M", "do", "-s", str(size)]
    return netns.run(ns, [*argv, target], check=False, timeout=30)


def tx_packets(node: CniNode, dev: str) -> int:
    info = json.loads(netns.run(node.node, ["ip", "-s", "-j", "link", "show", dev]).stdout)[0]
    return info["stats64"]["tx"]["packets"]


# --- ADD --------------------------------------------------------------------------------------------

def test_add_primary_eni_pod(cni_node):
    code, out = cni_node.add("web")
    assert code == 0, out
    veth = host_veth_name("eni", "default", "web")
    pod_ns = f"{cni_node.lab.prefix}pod-web"
    expected = {"cniVersion": "0.4.0",
                "interfaces": [{"name": veth},
                               {"name": "eth0", "mac": "254", "sandbox": f"/run/netns/{pod_ns}"},
                               {"name": host_veth_name("dummy", "default", "web"), "mac": "0", "sandbox": "0"}],
                "ips": [{"version": "4", "interface": 1, "address": "192.168.1.32/32"}],
                "dns": {}}
    assert out == gojson.dumps(expected, indent=4)
    link = cni_node.ip(cni_node.node, "link", "show", veth)[1].split()
    mac = link[link.index("link/ether") + 1]
    assert int(mac.split(":")[0], 16) & 0x03 == 0x02                    # locally administered unicast
    assert "mtu 9001" in cni_node.ip(cni_node.node, "link", "show", veth)[0]
    # the pod's view (§7.3)
    assert [l.split(None, 1)[1].split("\\")[0].strip() for l in cni_node.ip(pod_ns, "-4", "-o", "addr")] == [
        "eth0    inet 192.168.1.32/32 scope global eth0"]
    assert "mtu 9001" in cni_node.ip(pod_ns, "link", "show", "eth0")[0]
    assert cni_node.ip(pod_ns, "route") == ["default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link"]
    assert cni_node.ip(pod_ns, "neigh") == [f"169.254.1.1 dev eth0 lladdr {mac} PERMANENT"]
    # the node's view (§6.2, §6.3): no 1536 rule for a primary-ENI pod
    assert cni_node.ip(cni_node.node, "rule") == [
        BASE_NODE_RULES[0], "512:\tfrom all to 192.168.1.32 lookup main", *BASE_NODE_RULES[1:]]
    assert cni_node.ip(cni_node.node, "route", "show", "table", "main") == [
        *MAIN_ROUTES, f"192.168.1.32 dev {veth} scope link"]
    assert cni_node.datastore.assigned == 1


def test_pod_reaches_the_vpc_and_honours_the_mtu(cni_node):
    assert cni_node.add("web")[0] == 0
    pod_ns = f"{cni_node.lab.prefix}pod-web"
    assert ping(pod_ns, GATEWAY).returncode == 0
    assert ping(pod_ns, GATEWAY, size=8973).returncode == 0             # 9001-byte packets pass
    too_big = ping(pod_ns, GATEWAY, size=8974, count=1)
    assert too_big.returncode != 0 and "mtu=9001" in (too_big.stdout + too_big.stderr)
    assert ping(pod_ns, OUTSIDE_HOST).returncode == 0                   # SNATed to the node's IP


@pytest.mark.parametrize("cni_node", ["eth1-only"], indirect=True)
def test_add_secondary_eni_pod(cni_node):
    code, out = cni_node.add("api")
    assert code == 0, out
    result = json.loads(out)
    assert result["interfaces"][1]["mac"] == "2" and result["interfaces"][2]["sandbox"] == "1"
    assert result["ips"][0]["address"] == "192.168.1.64/32"
    veth = host_veth_name("eni", "default", "api")
    assert cni_node.ip(cni_node.node, "rule") == [
        BASE_NODE_RULES[0], "512:\tfrom all to 192.168.1.64 lookup main", BASE_NODE_RULES[1],
        "1536:\tfrom 192.168.1.64 lookup 2", *BASE_NODE_RULES[2:]]
    assert cni_node.ip(cni_node.node, "route", "show", "table", "main") == [
        *MAIN_ROUTES, f"192.168.1.64 dev {veth} scope link"]
    pod_ns = f"{cni_node.lab.prefix}pod-api"
    before = tx_packets(cni_node, "eth1"), tx_packets(cni_node, "eth0")
    assert ping(pod_ns, GATEWAY, count=3).returncode == 0               # VPC traffic leaves eth1
    assert tx_packets(cni_node, "eth1") - before[0] >= 3
    before = tx_packets(cni_node, "eth1"), tx_packets(cni_node, "eth0")
    assert ping(pod_ns, OUTSIDE_HOST, count=3).returncode == 0          # outside: connmark → eth0
    assert tx_packets(cni_node, "eth0") - before[1] >= 3
    assert tx_packets(cni_node, "eth1") - before[0] < 3


@pytest.mark.parametrize("cni_node", ["empty"], indirect=True)
def test_add_with_an_exhausted_pool(cni_node):
    code, out = cni_node.add("late")
    assert code == 1
    assert json.loads(out) == {"code": 999, "msg": "add cmd: failed to assign an IP address to container"}
    assert cni_node.host_veths() == []
    assert cni_node.ip(cni_node.node, "rule") == BASE_NODE_RULES
    assert [l.split(":")[1].strip() for l in cni_node.ip(f"{cni_node.lab.prefix}pod-late", "-o", "link")] == ["lo"]


def test_add_without_ipamd(cni_node):
    cni_node.stop_ipamd()
    code, out = cni_node.add("web")
    error = json.loads(out)
    assert code == 1 and error["code"] == 999
    assert error["msg"].startswith(
        "add cmd: Error received from AddNetwork gRPC call: rpc error: code = Unavailable desc = ")
    assert cni_node.host_veths() == [] and cni_node.ip(cni_node.node, "rule") == BASE_NODE_RULES


def test_failed_setup_leaves_nothing_and_returns_the_address(cni_node):
    pod_ns = cni_node.lab.pod("web")
    netns.run(pod_ns, ["ip", "route", "add", "blackhole", "default"])   # the pod's default route clashes
    code, out = cni_node.add("web")
    assert code == 1
    assert json.loads(out) == {"code": 999, "msg": (
        "add command: failed to setup network: SetupPodNetwork: failed to setup veth pair: failed to setup "
        "veth network: setup NS network: failed to add default route: file exists")}
    assert cni_node.host_veths() == []
    assert cni_node.ip(cni_node.node, "rule") == BASE_NODE_RULES
    assert cni_node.ip(cni_node.node, "route", "show", "table", "main") == MAIN_ROUTES
    assert [l.split(":")[1].strip() for l in cni_node.ip(pod_ns, "-o", "link")] == ["lo"]
    assert cni_node.datastore.assigned == 0                 # DelNetwork(SetupNSFailed)


@pytest.mark.parametrize("path", ["/proc/1/ns/net", "/run/netns/not-a-lab-ns", "NODE"])
def test_add_refuses_a_namespace_outside_the_lab(cni_node, path):
    path = f"/run/netns/{cni_node.node}" if path == "NODE" else path
    code, out = cni_node.add("web", netns_path=path)
    assert code == 1 and json.loads(out)["code"] == 4
    assert cni_node.datastore.assigned == 0 and cni_node.host_veths() == []


def test_multiple_pods_and_readd_of_a_stale_veth(cni_node):
    for pod in ("a", "b"):
        assert cni_node.add(pod)[0] == 0
    assert len(cni_node.host_veths()) == 2
    assert cni_node.delete("a")[0] == 0
    code, out = cni_node.add("a")                                       # same pod name, same netns
    assert code == 0, out
    assert json.loads(out)["ips"][0]["address"] == "192.168.1.34/32"    # .32 is cooling down
    assert cni_node.ip(f"{cni_node.lab.prefix}pod-a", "-4", "-o", "addr")[0].split()[3] == "192.168.1.34/32"
    assert ping(f"{cni_node.lab.prefix}pod-a", GATEWAY).returncode == 0


@pytest.mark.parametrize("cni_node", ["multi-nic"], indirect=True)
def test_add_multi_nic_pod(cni_node):
    """One address per network card: eth0 plus mNicIf1, whose traffic uses pod table 1 (rule 1)."""
    conf = {**CONF, "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {
        "k8s.amazonaws.com/nicConfig": "multi-nic-attachment"}}}
    code, out = cni_node.add("mn", conf=conf)
    assert code == 0, out
    result = json.loads(out)
    second = host_veth_name("eni", "default", "mn", 1)
    assert [(i["name"], i.get("mac")) for i in result["interfaces"]] == [
        (host_veth_name("eni", "default", "mn"), None), ("eth0", "254"), (second, None),
        ("mNicIf1", "10100"), (host_veth_name("dummy", "default", "mn"), "0")]
    assert [(ip["interface"], ip["address"]) for ip in result["ips"]] == [
        (1, "192.168.1.32/32"), (3, f"{CARD1_IP}/32")]
    pod_ns = f"{cni_node.lab.prefix}pod-mn"
    assert cni_node.ip(pod_ns, "rule")[1] == f"1:\tfrom {CARD1_IP} lookup 1"
    assert cni_node.ip(pod_ns, "route", "show", "table", "1") == [
        "default via 169.254.1.2 dev mNicIf1", "169.254.1.2 dev mNicIf1 scope link"]
    assert f"1536:\tfrom {CARD1_IP} lookup 10100" in cni_node.ip(cni_node.node, "rule")
    assert f"{CARD1_IP} dev {second} scope link" in cni_node.ip(cni_node.node, "route")
    assert cni_node.delete("mn") == (0, "")
    assert cni_node.ip(cni_node.node, "rule") == BASE_NODE_RULES


# --- DEL --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cni_node", ["eth1-only"], indirect=True)
def test_del_removes_rules_and_route_and_is_idempotent(cni_node):
    assert cni_node.add("api")[0] == 0
    assert cni_node.delete("api") == (0, "")
    assert cni_node.ip(cni_node.node, "rule") == BASE_NODE_RULES
    assert cni_node.ip(cni_node.node, "route", "show", "table", "main") == MAIN_ROUTES
    assert cni_node.datastore.assigned == 0
    assert cni_node.delete("api") == (0, "")                            # ipamd: unknown pod → done
    netns.delete(f"{cni_node.lab.prefix}pod-api")                       # the runtime removes the sandbox
    assert cni_node.call("DEL", "api", "sandbox-api", netns_path="") == (0, "")


@pytest.mark.parametrize("cni_node", ["eth1-only"], indirect=True)
def test_del_without_ipamd_tears_down_from_prev_result(cni_node):
    assert cni_node.add("api")[0] == 0
    cni_node.stop_ipamd()
    assert cni_node.delete("api") == (0, "")
    assert cni_node.ip(cni_node.node, "rule") == BASE_NODE_RULES
    assert cni_node.ip(cni_node.node, "route", "show", "table", "main") == MAIN_ROUTES


# --- CHECK ------------------------------------------------------------------------------------------

def test_check(cni_node):
    assert cni_node.add("web")[0] == 0
    assert cni_node.check("web") == (0, "")
    netns.run(f"{cni_node.lab.prefix}pod-web", ["ip", "neigh", "flush", "dev", "eth0", "nud", "permanent"])
    code, out = cni_node.check("web")
    assert code == 1 and json.loads(out)["msg"].startswith("check cmd: no permanent neighbour 169.254.1.1")


def test_add_del_latency(cni_node, record_property):
    """Not an assertion on time: records what one exec'd ADD and DEL cost on this machine."""
    times = {"ADD": [], "DEL": []}
    for i in range(3):
        start = time.perf_counter()
        assert cni_node.add(f"p{i}")[0] == 0
        times["ADD"].append(time.perf_counter() - start)
        start = time.perf_counter()
        assert cni_node.delete(f"p{i}")[0] == 0
        times["DEL"].append(time.perf_counter() - start)
    for command, values in times.items():
        record_property(f"{command.lower()}_seconds", sorted(values)[1])
