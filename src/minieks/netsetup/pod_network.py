"""Wire and unwire one pod on a real kernel, as the aws-cni driver does (spec §7.3, §7.4).

The calling thread is in the node's namespace (the plugin runs there, under `ip netns exec`);
`node` is an IPRoute opened there and the pod's namespace is a lab namespace by name. ADD makes
the veth from inside the pod with its peer created directly in the node (random locally
administered MAC), gives the pod its /32, the 169.254.1.(i+1) gateway as a permanent neighbour
and default route, then adds the node's /32 route and the 512 (and 1536) rules. A failure undoes
what this call created. DEL only removes the rules and the route: the runtime's removal of the
pod namespace takes the veth pair with it. Error texts are upstream's, so kubelet shows the same.
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import NetlinkError

from minieks.fabric import netns
from minieks.netsetup import names, netlink, rules
from minieks.netsetup.names import table_name
from minieks.netsetup.rules import IpRule

MAC_TRIES = 10
HOST_VETH_IPV6_SYSCTLS = (("accept_ra", "0"), ("accept_redirects", "1"), ("forwarding", "0"))
_SETUP = "SetupPodNetwork: failed to setup veth pair: failed to setup veth network: "
_ROUTES = "SetupPodNetwork: unable to setup IP based container routes and rules: "
_TEARDOWN = "TeardownPodNetwork: unable to teardown IP based container routes and rules: "


class PodNetworkError(RuntimeError):
    """Set-up or tear-down failed; str() is the text upstream's driver returns."""


@dataclass(frozen=True)
class PodInterface:
    """One pod interface ipamd gave an address for (index 0: CNI_IFNAME; i>0: mNicIf<i>)."""

    host_veth: str
    cont_veth: str
    address: str          # "<ip>/32"
    route_table: int      # ipamd's RouteTableId for the address's ENI
    index: int = 0

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


@dataclass
class _Created:
    """What one ADD has made so far, so a failure can take exactly that back."""

    veths: list[str] = field(default_factory=list)
    rules: list[IpRule] = field(default_factory=list)


def current_lab_namespace() -> str | None:
    """The lab namespace the calling thread is in, or None (e.g. the root namespace)."""
    me = os.stat("/proc/thread-self/ns/net")
    for name in netns.list_namespaces():
        try:
            st = os.stat(netns.path(name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
            return name
    return None


def _require_lab_namespace() -> None:
    """The node side is the calling thread's namespace: never let that be one outside the lab."""
    if current_lab_namespace() is None:
        raise PodNetworkError("refusing to change a network namespace outside the lab (mek-*)")


def random_mac(taken: set[str], rng: random.Random | None = None) -> str:
    """A locally administered unicast MAC no link in the node uses (upstream: 10 tries)."""
    rng = rng or random.SystemRandom()
    for _ in range(MAC_TRIES):
        octets = [rng.randrange(256) for _ in range(6)]
        octets[0] = (octets[0] & 0xFE) | 0x02
        mac = ":".join(f"{o:02x}" for o in octets)
        if mac not in taken:
            return mac
    raise PodNetworkError("failed to generate unique mac after 10 attempts.")


def _sysctl_host_veth(name: str) -> None:
    """IPv6 settings of the host veth before it comes up; missing files are ignored."""
    for key, value in HOST_VETH_IPV6_SYSCTLS:
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/{key}", "w") as handle:
                handle.write(value)
        except FileNotFoundError:
            pass


def setup_pod_network(node: Any, pod_ns: str, ifaces: Sequence[PodInterface], mtu: int) -> list[str]:
    """Wire every interface; returns the host veth MACs. On error nothing of it is left."""
    _require_lab_namespace()
    created = _Created()
    node_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        existing = netlink.link_macs()         # the calling thread is in the node's namespace: one dump
        with netns.iproute(pod_ns) as pod:
            return [_setup_one(node, node_fd, pod, iface, mtu, created, existing) for iface in ifaces]
    except BaseException:
        undo(node, created)
        raise
    finally:
        os.close(node_fd)


def _setup_one(node: Any, node_fd: int, pod: Any, iface: PodInterface, mtu: int,
               created: _Created, existing: dict[str, str]) -> str:
    """One veth pair; `existing` (link name → MAC in the node) gains the new host veth."""
    if iface.host_veth in existing:
        netlink.delete_link(node, iface.host_veth)
    mac = random_mac(set(existing.values()))
    try:
        pod.link("add", ifname=iface.cont_veth, kind="veth", mtu=mtu, state="up",
                 peer={"ifname": iface.host_veth, "address": mac, "mtu": mtu, "net_ns_fd": node_fd})
    except NetlinkError as err:
        raise PodNetworkError(_SETUP + netlink.go_error(err)) from err
    created.veths.append(iface.host_veth)
    existing[iface.host_veth] = mac
    host = _pod_side(node, pod, iface, mac)
    _host_side(node, iface, host, created)
    return mac


def _pod_side(node: Any, pod: Any, iface: PodInterface, mac: str) -> int:
    """Inside the pod: up, gateway route, default route, (rule), /32, permanent neighbour."""
    step = "setup NS network: failed to find link %r" % iface.host_veth
    try:
        host = netlink.link_by_name(node, iface.host_veth)
        if host is None:
            raise NetlinkError(errno.ENODEV)
        _sysctl_host_veth(iface.host_veth)
        step = "setup NS network: failed to set link %r up" % iface.host_veth
        node.link("set", index=host["index"], state="up")
        step = "setup NS network: failed to find link %r" % iface.cont_veth
        cont = pod.link("get", ifname=iface.cont_veth)[0]["index"]
        side = rules.pod_side(iface.address, iface.cont_veth, mac, iface.index)
        gw_route, default = side.routes
        step = "setup NS network: failed to add default gateway"
        netlink.replace_route(pod, gw_route, cont)
        if side.rule is not None:
            step = "setup NS network: failed to add rule for pod interface"
            pod.rule("add", **netlink.rule_request(side.rule))
        step = "setup NS network: failed to add default route"
        pod.route("add", **netlink.route_request(default, cont))
        step = "setup NS network: failed to add IP addr to %r" % iface.cont_veth
        pod.addr("add", index=cont, address=side.address.ip, prefixlen=side.address.prefixlen)
        step = "setup NS network: failed to add static ARP"
        pod.neigh("add", dst=side.gateway, lladdr=mac, ifindex=cont, state=netlink.NUD_PERMANENT)
    except NetlinkError as err:
        raise PodNetworkError(f"{_SETUP}{step}: {netlink.go_error(err)}") from err
    return host["index"]


def _host_side(node: Any, iface: PodInterface, host_index: int, created: _Created) -> None:
    """In the node: /32 route to the pod via its veth, rule 512, and 1536 off the primary ENI."""
    plan = rules.pod_host_side(iface.address, iface.host_veth, iface.route_table)
    where = f"containerAddr={iface.address}, hostVeth={iface.host_veth}, rtTable=main"
    try:
        netlink.replace_route(node, plan.route, host_index)
    except NetlinkError as err:
        raise PodNetworkError(f"{_ROUTES}failed to setup container route, {where}: "
                              f"{netlink.go_error(err)}") from err
    for rule in plan.rules:
        kind = "toContainer" if rule.priority == rules.TO_CONTAINER_PRIORITY else "fromContainer"
        try:
            netlink.add_rule(node, rule)
        except NetlinkError as err:
            raise PodNetworkError(f"{_ROUTES}failed to setup {kind} rule, containerAddr={iface.address}, "
                                  f"rtTable={table_name(rule.table)}: {netlink.go_error(err)}") from err
        created.rules.append(rule)


def undo(node: Any, created: _Created) -> None:
    """Take back a failed ADD: its rules, and its veths (the pod end and the /32 route go too)."""
    for rule in created.rules:
        try:
            netlink.delete_rule(node, rule)
        except NetlinkError:
            pass
    for name in created.veths:
        try:
            netlink.delete_link(node, name)
        except NetlinkError:
            pass


def teardown_pod_network(node: Any, address: str, route_table: int) -> None:
    """Rule 512, every 1536 rule for the address (unless main or legacy 1), the host route."""
    _require_lab_namespace()
    plan = rules.pod_host_side(address, "", route_table)
    wanted = plan.rules
    to_pod = wanted[0]
    try:
        netlink.delete_rule(node, to_pod)
    except NetlinkError as err:
        raise PodNetworkError(f"{_TEARDOWN}failed to delete toContainer rule, containerAddr={address}, "
                              f"rtTable=main: {netlink.go_error(err)}") from err
    for rule in wanted[1:]:
        try:
            netlink.delete_rule(node, rule, all_matches=True)
        except NetlinkError as err:
            raise PodNetworkError(f"{_TEARDOWN}failed to delete fromContainer rule, containerAddr="
                                  f"{address}, rtTable={table_name(rule.table)}: "
                                  f"{netlink.go_error(err)}") from err
    try:
        netlink.delete_route(node, plan.route)
    except NetlinkError:
        pass  # upstream only logs a failed route deletion


def teardown_branch_pod_network(node: Any, address: str, vlan_id: int) -> None:
    """A branch-ENI pod: its VLAN link, the prio-10 rules of table vlan+100, and 512/1536."""
    _require_lab_namespace()
    table = names.vlan_route_table(vlan_id)
    netlink.delete_link(node, names.vlan_link_name(vlan_id))
    netlink.delete_rule(node, IpRule(rules.VLAN_RULE_PRIORITY, table), all_matches=True)
    teardown_pod_network(node, address, table)


def check_pod_network(node: Any, pod_ns: str, iface: PodInterface) -> None:
    """CHECK: the pod still has its address, gateway neighbour and routes; the node its rules."""
    host = netlink.link_by_name(node, iface.host_veth)
    if host is None:
        raise PodNetworkError(f"host veth {iface.host_veth} not found")
    mac = netlink.link_mac(host)
    side = rules.pod_side(iface.address, iface.cont_veth, mac, iface.index)
    with netns.iproute(pod_ns) as pod:
        cont = netlink.link_by_name(pod, iface.cont_veth)
        if cont is None:
            raise PodNetworkError(f"interface {iface.cont_veth} not found in {pod_ns}")
        addrs = {a.get_attr("IFA_ADDRESS") for a in pod.addr("dump", index=cont["index"], family=2)}
        if iface.ip not in addrs:
            raise PodNetworkError(f"{iface.cont_veth} does not hold {iface.address}")
        neigh = [n for n in pod.neigh("dump", ifindex=cont["index"], family=2)
                 if n.get_attr("NDA_DST") == side.gateway]
        if not neigh or (neigh[0].get_attr("NDA_LLADDR") or "").lower() != mac:
            raise PodNetworkError(f"no permanent neighbour {side.gateway} lladdr {mac} on {iface.cont_veth}")
        table = side.table
        gws = [r.get_attr("RTA_GATEWAY") for r in pod.route("dump", family=2, table=table)
               if r["dst_len"] == 0]
        if side.gateway not in gws:
            raise PodNetworkError(f"no default route via {side.gateway} in table {table_name(table)}")
    present = set(netlink.list_rules(node))
    for rule in rules.pod_host_side(iface.address, iface.host_veth, iface.route_table).rules:
        if rule not in present:
            raise PodNetworkError(f"rule missing in the node: {rule.show()}")
