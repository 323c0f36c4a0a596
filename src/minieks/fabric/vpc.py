"""The VPC in three namespaces: the implicit router, the internet gateway and a stand-in internet.

    mek-<lab>-inet  eth0 203.0.113.10/24 + .20/24, default via 203.0.113.1         (MTU 1500)
        | veth eth0 <-> inet0
    mek-<lab>-igw   inet0 203.0.113.1/24, vpc0 192.0.2.254/30, <VPC range> via 192.0.2.253;
                    mode "eip" (default, what AWS does): 1:1 NAT primary address <-> public
                    address, other sources dropped; mode "route": no NAT, the VPC range is
                    routed both ways (the internet has <VPC range> via 203.0.113.1), so the
                    stand-in hosts see VPC sources: node primaries, and pods under external SNAT
        | veth vpc0 <-> igw0                                                       (MTU 9001)
    mek-<lab>-vpc   igw0 192.0.2.253/30, default via 192.0.2.254, blackhole <VPC range>,
                    the resolver at <VPC range>+2 on lo, and one port per attached ENI:
                    n<i>e<dev> with the subnet gateway (+1) as /32, proxy_arp (delay 0),
                    rp_filter=1 (EC2's source/destination check), and for every address EC2 gave
                    the ENI a route plus a permanent neighbour with the ENI's MAC (EC2's mapping)
        | veth n<i>e<dev> <-> eth<dev> in the node

rp_filter validates the sender of ARP requests too: a node that ARPs for its gateway from an
address EC2 has not given it gets no answer (it will have ARPed from its primary address first).
The VPC and the IGW add 1 to every TTL on the way in, so neither shows as a hop (report pitfall 5).
Ports hold no state the kernel does not: each port's alias is its ENI id and its routes are the
ENI's addresses, so a restarted fabric reads them back. The router knows nothing of EC2; the
fabric (fabric/lab.py) tells it what to plug, route and NAT.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
from dataclasses import dataclass, field

from minieks.fabric import kernel, netns
from minieks.fabric.internet import Services, Zone
from minieks.fabric.kernel import NUD_PERMANENT, PROTO_BOOT, SCOPE_LINK, tolerate
from minieks.fabric.names import LabNames, node_ifname, port_name
from minieks.fabric.view import EniView, addresses

VPC_MTU = 9001
INTERNET_MTU = 1500
IGW_MODES = ("eip", "route")


def check_igw_mode(mode: str) -> str:
    """"eip" (1:1 NAT, as AWS) or "route" (no NAT, to make sources visible); anything else is refused."""
    if mode not in IGW_MODES:
        raise ValueError(f"igw_mode {mode!r}: use one of {', '.join(IGW_MODES)}")
    return mode


@dataclass(frozen=True)
class VpcLayout:
    """The addresses of the VPC's own plumbing; everything outside the VPC is documentation space."""

    cidr: str
    transfer_vpc: str = "192.0.2.253"     # VPC router <-> IGW, a /30
    transfer_igw: str = "192.0.2.254"
    transfer_len: int = 30
    internet_gateway: str = "203.0.113.1"  # the IGW's address on the stand-in internet
    internet_hosts: tuple[str, ...] = ("203.0.113.10", "203.0.113.20")
    internet_len: int = 24

    @property
    def resolver(self) -> str:
        return str(ipaddress.IPv4Network(self.cidr).network_address + 2)


@dataclass
class Port:
    """One ENI's veth: the VPC end `name` (ifindex `index`) and what is routed through it."""

    name: str
    index: int
    eni_id: str
    destinations: set[str] = field(default_factory=set)


def port_mac(eni_id: str) -> str:
    """The VPC end's MAC (what nodes see as their gateway's), fixed per ENI so labs replay."""
    digest = hashlib.sha1(eni_id.encode()).hexdigest()
    return "0e:" + ":".join(digest[i:i + 2] for i in range(0, 10, 2))


# ------------------------------------------------------------------------------------ the rules
def vpc_rules() -> str:
    return ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n"
            ":OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            '-A PREROUTING -m comment --comment "minieks: the VPC fabric is not an IP hop" -j TTL --ttl-inc 1\n'
            "COMMIT\n")


def igw_ttl_rules() -> str:
    return vpc_rules().replace("the VPC fabric", "the internet gateway")


def igw_rules(mapping: dict[str, str]) -> str:
    """The IGW's nat and filter tables for a private -> public address map ("eip" mode)."""
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]"]
    forward = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
               "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    for private, public in sorted(mapping.items(), key=lambda kv: ipaddress.IPv4Address(kv[0])):
        nat.append(f'-A PREROUTING -i inet0 -d {public}/32 -m comment --comment "IGW: public IP of {private}" '
                   f"-j DNAT --to-destination {private}")
        nat.append(f"-A POSTROUTING -o inet0 -s {private}/32 -j SNAT --to-source {public}")
        forward.append(f"-A FORWARD -i vpc0 -o inet0 -s {private}/32 -j ACCEPT")
    forward += ["-A FORWARD -i inet0 -o vpc0 -m conntrack --ctstate DNAT -j ACCEPT",
                '-A FORWARD -i vpc0 -m comment --comment "IGW: no public IP mapping" -j DROP',
                '-A FORWARD -i inet0 -m comment --comment "IGW: not addressed to a public IP" -j DROP']
    return "\n".join(nat) + "\nCOMMIT\n" + "\n".join(forward) + "\nCOMMIT\n"


def igw_route_rules(cidr: str) -> str:
    """The IGW's nat and filter tables in "route" mode: no NAT (an empty nat table also clears an
    earlier eip mode's), the VPC range forwarded both ways, anything else dropped."""
    return ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            f'-A FORWARD -i vpc0 -o inet0 -s {cidr} -m comment --comment "IGW route mode: from the VPC" -j ACCEPT\n'
            f'-A FORWARD -i inet0 -o vpc0 -d {cidr} -m comment --comment "IGW route mode: to the VPC" -j ACCEPT\n'
            '-A FORWARD -i vpc0 -m comment --comment "IGW: not a VPC source" -j DROP\n'
            '-A FORWARD -i inet0 -m comment --comment "IGW: not addressed to the VPC" -j DROP\n'
            "COMMIT\n")


# ----------------------------------------------------------------------------------- the router
class VpcRouter:
    """Builds and keeps the vpc, igw and inet namespaces; plugs ENIs in as ports.

    Every method opens its own netlink socket in the calling thread (see netns.iproute): EC2
    events arrive on whichever thread made the API call."""

    def __init__(self, names: LabNames, layout: VpcLayout, igw_mode: str = "eip"):
        self.names = names
        self.layout = layout
        self.igw_mode = check_igw_mode(igw_mode)
        self.services = Services()
        self.nat: dict[str, str] | None = None

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return (self.names.vpc, self.names.igw, self.names.inet)

    # ------------------------------------------------------------------------------ building
    def build(self) -> None:
        """Make (or re-assert, after a restart) the three namespaces and their links."""
        lay = self.layout
        vpc, igw, inet = self.namespaces
        for ns in self.namespaces:
            netns.create(ns)
        kernel.sysctls(vpc, {**kernel.base_sysctls(True), "net.ipv4.conf.all.rp_filter": 1,
                             "net.ipv4.conf.default.rp_filter": 1, "net.ipv4.conf.all.send_redirects": 0,
                             "net.ipv4.conf.default.send_redirects": 0, "net.ipv4.conf.all.proxy_arp": 0})
        kernel.sysctls(igw, {**kernel.base_sysctls(True), "net.ipv4.conf.all.rp_filter": 1,
                             "net.ipv4.conf.default.rp_filter": 1})
        kernel.sysctls(inet, {**kernel.base_sysctls(False), "net.ipv4.conf.all.rp_filter": 1,
                              "net.ipv4.conf.default.rp_filter": 1})
        _veth(vpc, "igw0", igw, "vpc0", VPC_MTU)
        _veth(igw, "inet0", inet, "eth0", INTERNET_MTU)
        with netns.iproute(vpc) as ipr:
            ipr.link("set", index=1, state="up")
            kernel.add_address(ipr, 1, lay.resolver, 32)
            index = _up(ipr, "igw0")
            kernel.add_address(ipr, index, lay.transfer_vpc, lay.transfer_len)
            ipr.route("replace", dst="0.0.0.0/0", gateway=lay.transfer_igw, oif=index, proto=PROTO_BOOT)
            ipr.route("replace", dst=lay.cidr, type="blackhole", proto=PROTO_BOOT)
        with netns.iproute(igw) as ipr:
            ipr.link("set", index=1, state="up")
            index = _up(ipr, "vpc0")
            kernel.add_address(ipr, index, lay.transfer_igw, lay.transfer_len)
            ipr.route("replace", dst=lay.cidr, gateway=lay.transfer_vpc, oif=index, proto=PROTO_BOOT)
            index = _up(ipr, "inet0")
            kernel.add_address(ipr, index, lay.internet_gateway, lay.internet_len)
        with netns.iproute(inet) as ipr:
            ipr.link("set", index=1, state="up")
            index = _up(ipr, "eth0")
            for host in lay.internet_hosts:
                kernel.add_address(ipr, index, host, lay.internet_len)
            ipr.route("replace", dst="0.0.0.0/0", gateway=lay.internet_gateway, oif=index, proto=PROTO_BOOT)
            if self.igw_mode == "route":           # the way back to VPC sources, spelled out
                ipr.route("replace", dst=lay.cidr, gateway=lay.internet_gateway, oif=index, proto=PROTO_BOOT)
            else:                                   # a restart may switch a lab from route to eip
                with tolerate(*kernel.GONE):
                    ipr.route("del", dst=lay.cidr, gateway=lay.internet_gateway, oif=index, proto=PROTO_BOOT)
        kernel.iptables_restore(vpc, vpc_rules())
        kernel.iptables_restore(igw, igw_ttl_rules())

    def start_services(self, records: dict[str, tuple[str, ...]]) -> None:
        """The HTTP host on the stand-in internet and the resolver at the VPC's +2."""
        if not self.services.running:
            self.services.http(self.names.inet, 80)
            self.services.dns(self.names.vpc, self.layout.resolver, Zone(records, self.layout.cidr))

    def stop_services(self) -> None:
        self.services.stop()

    # -------------------------------------------------------------------------------- the IGW
    def set_nat(self, mapping: dict[str, str]) -> bool:
        """Make the IGW's 1:1 NAT exactly `mapping` (always, the first time after build); forget
        the flows of mappings that went away. In route mode there is no NAT: public addresses are
        ignored and the route rules are written once."""
        if self.igw_mode == "route":
            mapping = {}
        if mapping == self.nat:
            return False
        gone = {p: q for p, q in (self.nat or {}).items() if mapping.get(p) != q}
        rules = igw_rules(mapping) if self.igw_mode == "eip" else igw_route_rules(self.layout.cidr)
        kernel.iptables_restore(self.names.igw, rules)
        for private, public in gone.items():
            for argv in (["-s", private], ["-d", public]):     # flows out of it, flows into it
                netns.run(self.names.igw, ["conntrack", "-D", *argv], check=False)
        self.nat = dict(mapping)
        return True

    # ------------------------------------------------------------------------------- the ports
    def plug(self, eni: EniView, node_ns: str, node_index: int) -> Port:
        """A veth for an attached ENI: `eth<dev>` with the ENI's MAC in the node, the port here."""
        name = port_name(node_index, eni.device_index, eni.card)
        inside = node_ifname(eni.device_index, eni.card)
        with netns.iproute(node_ns) as node:
            kernel.delete_link(node, inside)            # a leftover from an earlier attachment
        with netns.iproute(self.names.vpc) as ipr:
            kernel.delete_link(ipr, name)
            ipr.link("add", ifname=name, kind="veth", mtu=VPC_MTU, address=port_mac(eni.id),
                     peer={"ifname": inside, "net_ns_fd": netns.path(node_ns), "address": eni.mac,
                           "mtu": VPC_MTU})
            index = kernel.link_index(ipr, name)
            ipr.link("set", index=index, ifalias=eni.id)
            kernel.sysctls(self.names.vpc, {f"net.ipv4.conf.{name}.rp_filter": 1,
                                            f"net.ipv4.conf.{name}.proxy_arp": 1,
                                            f"net.ipv4.conf.{name}.send_redirects": 0,
                                            f"net.ipv4.neigh.{name}.proxy_delay": 0})
            kernel.add_address(ipr, index, eni.gateway, 32)
            ipr.link("set", index=index, state="up")
        port = Port(name, index, eni.id)
        self.route(port, eni)
        return port

    def unplug(self, port: Port) -> None:
        """Remove the veth (both ends) if it still belongs to the port's ENI (its name may have
        gone to another ENI since); its routes and neighbours go with it."""
        with netns.iproute(self.names.vpc) as ipr:
            with tolerate(*kernel.GONE):
                link = ipr.link("get", ifname=port.name)[0]
                if link.get("ifalias") == port.eni_id:
                    ipr.link("del", index=link["index"])
        port.destinations.clear()

    def route(self, port: Port, eni: EniView, full: bool = False) -> tuple[int, int]:
        """Route exactly the ENI's addresses to the port; (added, removed). `full` re-asserts all."""
        want = set(eni.destinations())
        add = want if full else want - port.destinations
        remove = port.destinations - want
        with netns.iproute(self.names.vpc) as ipr:
            for dst in sorted(add):
                ipr.route("replace", dst=dst, oif=port.index, scope=SCOPE_LINK, proto=PROTO_BOOT)
                for address in addresses(dst):
                    ipr.neigh("replace", dst=address, lladdr=eni.mac, ifindex=port.index, state=NUD_PERMANENT)
            for dst in sorted(remove):
                # with oif: never remove the route an address has since got on another ENI's port
                with tolerate(*kernel.GONE):
                    ipr.route("del", dst=dst, oif=port.index, scope=SCOPE_LINK, proto=PROTO_BOOT)
                for address in addresses(dst):
                    with tolerate(*kernel.GONE):
                        ipr.neigh("del", dst=address, ifindex=port.index)
        port.destinations = want
        return len(add), len(remove)

    def existing_ports(self) -> dict[str, Port]:
        """The ports the kernel has (after a restart), by ENI id, with the routes they carry."""
        found: dict[str, Port] = {}
        with netns.iproute(self.names.vpc) as ipr:
            by_index: dict[int, Port] = {}
            for link in ipr.link("dump"):
                alias = link.get("ifalias") or ""
                if alias.startswith("eni-"):
                    port = Port(link.get("ifname"), link["index"], alias)
                    found[alias] = by_index[link["index"]] = port
            for route in ipr.route("dump", table=254):
                port = by_index.get(route.get("oif"))
                if port and route.get("dst") and route["dst_len"] in (28, 32):
                    port.destinations.add(f"{route.get('dst')}/{route['dst_len']}")
        return found


def _veth(namespace: str, name: str, peer_ns: str, peer: str, mtu: int) -> None:
    """A veth from `namespace` to `peer_ns`, unless a previous run left it in place."""
    with netns.iproute(namespace) as ipr:
        if kernel.link_index(ipr, name) is None:
            with tolerate(errno.EEXIST):
                ipr.link("add", ifname=name, kind="veth", mtu=mtu,
                         peer={"ifname": peer, "net_ns_fd": netns.path(peer_ns), "mtu": mtu})
        ipr.link("set", index=kernel.link_index(ipr, name), mtu=mtu)


def _up(ipr, name: str) -> int:
    index = kernel.link_index(ipr, name)
    ipr.link("set", index=index, state="up")
    return index
