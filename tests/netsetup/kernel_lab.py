"""A minimal node for kernel tests: one node namespace with two ENIs on an uplink namespace.

`<prefix>up` stands in for the VPC: it owns the subnet gateway 192.168.1.1 on both ports, a
host outside the VPC (10.99.0.1), and maps every ENI address (primary and warm secondary IPs)
to its port with a permanent neighbour, as EC2's fabric does. `<prefix>node` has eth0
(192.168.1.10/24, default via .1) and eth1 (attached, unconfigured: ipamd's SetupENINetwork
does that), each with its ENI MAC. Everything is named with a fresh `mek-t<hex>-` prefix and
`cleanup()` removes every namespace with it, whatever state a test left.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

import pytest

from minieks.fabric import netns

PROTO_BOOT = 3
SUBNET = "192.168.1.0/24"
GATEWAY = "192.168.1.1"
VPC_CIDR = "192.168.0.0/16"
OUTSIDE_HOST = "10.99.0.1"
PRIMARY_IP = "192.168.1.10"
ENI1_IP = "192.168.1.20"
ETH0_SECONDARY = ("192.168.1.32", "192.168.1.33", "192.168.1.34")
ETH1_SECONDARY = ("192.168.1.64", "192.168.1.65", "192.168.1.66")
MTU = 9001

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="kernel tests need root")


def new_prefix() -> str:
    return f"mek-t{secrets.token_hex(3)}-"


@dataclass
class NodeLab:
    prefix: str
    eth0_mac: str = "02:0e:00:00:00:10"
    eth1_mac: str = "02:0e:00:00:00:20"
    pods: list[str] = field(default_factory=list)

    @property
    def up(self) -> str:
        return self.prefix + "up"

    @property
    def node(self) -> str:
        return self.prefix + "node"

    def pod(self, name: str) -> str:
        """A pod sandbox namespace (the runtime's job, before it calls the plugin)."""
        ns = f"{self.prefix}pod-{name}"
        netns.create(ns)
        self.pods.append(ns)
        return ns

    def ip(self, ns: str, *args: str) -> str:
        return netns.run(ns, ["ip", *args]).stdout

    def cleanup(self) -> None:
        netns.cleanup(self.prefix)


def _base_sysctls(ns: str) -> None:
    """Nothing inherited from the root namespace matters (pitfall 1); no IPv6 noise."""
    netns.sysctl(ns, "net.ipv4.ip_forward", 1)
    netns.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", 1)
    netns.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", 1)


def build(prefix: str | None = None) -> NodeLab:
    lab = NodeLab(prefix or new_prefix())
    try:
        _build(lab)
    except BaseException:
        lab.cleanup()
        raise
    return lab


def _build(lab: NodeLab) -> None:
    netns.create(lab.up)
    netns.create(lab.node)
    for ns in (lab.up, lab.node):
        _base_sysctls(ns)
    netns.sysctl(lab.up, "net.ipv4.conf.all.rp_filter", 0)
    netns.sysctl(lab.node, "net.ipv4.conf.all.rp_filter", 1)
    ports = (("v0", "eth0", lab.eth0_mac, (PRIMARY_IP, *ETH0_SECONDARY)),
             ("v1", "eth1", lab.eth1_mac, (ENI1_IP, *ETH1_SECONDARY)))
    with netns.iproute(lab.up) as up:
        up.link("set", index=up.link("get", ifname="lo")[0]["index"], state="up")
        up.addr("add", index=1, address=OUTSIDE_HOST, prefixlen=32)
        for port, eni, mac, ips in ports:
            up.link("add", ifname=port, kind="veth", mtu=MTU,
                    peer={"ifname": eni, "address": mac, "mtu": MTU, "net_ns_fd": lab.node})
            index = up.link("get", ifname=port)[0]["index"]
            up.link("set", index=index, state="up")
            up.addr("add", index=index, address=GATEWAY, prefixlen=32)
            for ip in ips:
                up.route("add", dst=f"{ip}/32", oif=index, scope=253, proto=PROTO_BOOT)
                up.neigh("add", dst=ip, lladdr=mac, ifindex=index, state=0x80)
    with netns.iproute(lab.node) as node:
        node.link("set", index=node.link("get", ifname="lo")[0]["index"], state="up")
        eth0 = node.link("get", ifname="eth0")[0]["index"]
        node.link("set", index=eth0, state="up")
        node.addr("add", index=eth0, address=PRIMARY_IP, prefixlen=24)
        node.route("add", dst="0.0.0.0/0", gateway=GATEWAY, oif=eth0, proto=PROTO_BOOT)


@pytest.fixture
def node_lab():
    """A fresh minimal node, removed afterwards even when the test fails."""
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root")
    lab = build()
    try:
        yield lab
    finally:
        lab.cleanup()
        assert not netns.list_namespaces(lab.prefix)
