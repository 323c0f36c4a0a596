"""ip rules, routes and neighbours of the host and the pod (spec §6.2, §6.3, §7.3), as data.

Each object renders the line iproute2 prints for it (`ip rule show`, `ip route show [table T]`,
`ip neigh`), so tests hold the plan to upstream's verified text and the kernel layer applies
the same objects through netlink. Builders say which objects SetupHostNetwork, SetupENINetwork
and the CNI ADD create, and which existing rules they delete first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from minieks.netsetup import names
from minieks.netsetup.names import LOCAL_TABLE, MAIN_TABLE, table_name

# Priorities upstream uses (networkutils / driver).
POD_IN_PRIORITY = 1            # inside a multi-NIC pod: from <ip> lookup <i>
VLAN_RULE_PRIORITY = 10        # SGP strict: iif vlan.eth.N / iif <hostveth>
LOCAL_RULE_PRIORITY_SGP = 20   # SGP strict moves "lookup local" here
TO_CONTAINER_PRIORITY = 512
HOST_FWMARK_PRIORITY = 1024
EXTERNAL_SERVICE_PRIORITY = 1535
FROM_CONTAINER_PRIORITY = 1536
ENI_PRIMARY_IP_PRIORITY = 32765
SCOPE_LINK = "link"


def _host(addr: str) -> str:
    """How iproute2 prints a prefix: host prefixes without /32 or /128."""
    net = ipaddress.ip_network(addr, strict=False)
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return f"{net.network_address}/{net.prefixlen}"


def _family(addr: str | None) -> int:
    return 4 if addr is None else ipaddress.ip_network(addr, strict=False).version


@dataclass(frozen=True)
class IpRule:
    """One policy-routing rule; `mark`/`mask` for fwmark rules, `ipproto` e.g. "ipv6-icmp"."""

    priority: int
    table: int
    src: str | None = None
    dst: str | None = None
    mark: int | None = None
    mask: int | None = None
    iif: str | None = None
    ipproto: str | None = None
    family: int = 4

    def show(self) -> str:
        """The line `ip rule show` (or `ip -6 rule show`) prints."""
        parts = [f"{self.priority}:\tfrom", _host(self.src) if self.src else "all"]
        if self.dst:
            parts += ["to", _host(self.dst)]
        if self.mark is not None:
            mark = f"{self.mark:#x}"
            if self.mask is not None and self.mask != 0xFFFFFFFF:
                mark += f"/{self.mask:#x}"
            parts += ["fwmark", mark]
        if self.iif:
            parts += ["iif", self.iif]
        if self.ipproto:
            parts += ["ipproto", self.ipproto]
        parts += ["lookup", table_name(self.table)]
        return " ".join(parts)


@dataclass(frozen=True)
class Route:
    """One route; `dst` "default" or a prefix, `via` the gateway, `table` where it lives."""

    dst: str
    dev: str
    via: str | None = None
    scope: str | None = None
    table: int = MAIN_TABLE
    proto: str | None = None
    src: str | None = None

    def show(self, with_table: bool = False) -> str:
        """The line `ip route show [table T]` prints (table only shown for `table all`)."""
        parts = ["default" if self.dst in ("default", "0.0.0.0/0", "::/0") else _host(self.dst)]
        if self.via:
            parts += ["via", self.via]
        parts += ["dev", self.dev]
        if with_table and self.table != MAIN_TABLE:
            parts += ["table", table_name(self.table)]
        if self.proto:
            parts += ["proto", self.proto]
        if self.scope:
            parts += ["scope", self.scope]
        if self.src:
            parts += ["src", self.src]
        return " ".join(parts)

    def sort_key(self) -> tuple[int, int, int]:
        """Kernel dump order: by network address, longer prefixes first for the same address."""
        if self.dst in ("default", "0.0.0.0/0", "::/0"):
            return (0, 0, 0)
        net = ipaddress.ip_network(self.dst, strict=False)
        return (1, int(net.network_address), -net.prefixlen)


@dataclass(frozen=True)
class Neighbour:
    """A static neighbour entry (the pod's gateway → host veth MAC)."""

    ip: str
    dev: str
    lladdr: str
    state: str = "PERMANENT"

    def show(self) -> str:
        return f"{self.ip} dev {self.dev} lladdr {self.lladdr} {self.state}"


@dataclass(frozen=True)
class Address:
    """An address on a link, with its prefix length (pod: /32 or /128)."""

    ip: str
    prefixlen: int
    dev: str

    def show(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


def kernel_default_rules(family: int = 4) -> list[IpRule]:
    """The rules every namespace starts with (local 0, main 32766, default 32767)."""
    return [IpRule(0, LOCAL_TABLE, family=family), IpRule(32766, MAIN_TABLE, family=family),
            IpRule(32767, names.DEFAULT_TABLE, family=family)]


def show_rules(rules: Iterable[IpRule]) -> str:
    """`ip rule show`: by priority, rules of equal priority in the order they were added."""
    ordered = sorted(rules, key=lambda r: r.priority)
    return "\n".join(rule.show() for rule in ordered)


def show_routes(routes: Iterable[Route], table: int = MAIN_TABLE) -> str:
    """`ip route show table <table>`: that table's routes in kernel dump order."""
    selected = sorted((r for r in routes if r.table == table), key=Route.sort_key)
    return "\n".join(route.show() for route in selected)


# --- host (SetupHostNetwork, ipamd init) -------------------------------------------------------

def host_fwmark_rule(mark: int = 0x80) -> IpRule:
    """Rule 1024: connmarked replies use the main table, i.e. leave through the primary ENI."""
    return IpRule(HOST_FWMARK_PRIORITY, MAIN_TABLE, mark=mark, mask=mark)


@dataclass(frozen=True)
class RuleChanges:
    """Rules to delete (first) and to add; deletions of absent rules are harmless attempts."""

    delete: tuple[IpRule, ...] = ()
    add: tuple[IpRule, ...] = ()


def host_rule_changes(node_port_support: bool, external_snat: bool, v4_enabled: bool = True,
                      mark: int = 0x80) -> RuleChanges:
    """Rule 1024 is deleted on every start, then re-added if NodePort or in-node SNAT needs it."""
    rule = host_fwmark_rule(mark)
    wanted = v4_enabled and (node_port_support or not external_snat)
    return RuleChanges(delete=(rule,), add=(rule,) if wanted else ())


def external_service_rule(cidr: str) -> IpRule:
    """Rule 1535: traffic to an AWS_EXTERNAL_SERVICE_CIDRS entry uses the main table."""
    return IpRule(EXTERNAL_SERVICE_PRIORITY, MAIN_TABLE, dst=cidr, family=_family(cidr))


def external_service_rule_changes(existing: Sequence[IpRule], cidrs: Sequence[str]) -> RuleChanges:
    """Every existing 1535/main rule goes; one rule per configured CIDR comes back."""
    stale = tuple(r for r in existing
                  if r.priority == EXTERNAL_SERVICE_PRIORITY and r.table == MAIN_TABLE)
    return RuleChanges(delete=stale, add=tuple(external_service_rule(c) for c in cidrs))


def ipv6_gateway_rule() -> IpRule:
    """SGP strict in IPv6: ICMPv6 from the VPC router is looked up in local at priority 0."""
    return IpRule(0, LOCAL_TABLE, src=names.IPV6_ENI_GATEWAY + "/128", ipproto="ipv6-icmp", family=6)


def ipv6_gateway_rule_changes(enforcing_mode: str) -> RuleChanges:
    rule = ipv6_gateway_rule()
    if enforcing_mode == "strict":
        return RuleChanges(add=(rule,))
    return RuleChanges(delete=(rule,))


def rules_by_src_rewrite(existing: Sequence[IpRule], pod_ip: str) -> RuleChanges:
    """UpdateRuleListBySrc: old rules from a restored pod IP become one 1536 rule, same table."""
    src = ipaddress.ip_network(pod_ip, strict=False)
    matches = tuple(r for r in existing
                    if r.src and ipaddress.ip_network(r.src, strict=False) == src)
    if not matches:
        return RuleChanges()
    rule = IpRule(FROM_CONTAINER_PRIORITY, matches[0].table, src=str(src), family=src.version)
    return RuleChanges(delete=matches, add=(rule,))


# --- ENIs (SetupENINetwork) --------------------------------------------------------------------

class EniSetupError(ValueError):
    """SetupENINetwork refused its input (e.g. called for the primary ENI)."""


@dataclass(frozen=True)
class EniNetwork:
    """What SetupENINetwork programs for one secondary ENI."""

    dev: str
    table: int
    mtu: int
    address: Address
    routes: tuple[Route, ...]
    main_route_to_delete: Route
    rule: IpRule | None


def eni_network(dev: str, eni_ip: str, subnet: str, table: int, mtu: int = 9001,
                trunk: bool = False) -> EniNetwork:
    """Address, table routes via the subnet gateway, kernel route removal and rule 32765."""
    if table == MAIN_TABLE:
        raise EniSetupError("setupENINetwork should never be called on the primary ENI")
    net = ipaddress.ip_network(subnet, strict=False)
    gw = names.eni_subnet_gateway(subnet)
    host_len = net.max_prefixlen
    routes = (Route(f"{gw}/{host_len}", dev, scope=SCOPE_LINK, table=table),
              Route("default", dev, via=gw, table=table))
    if net.version == 4:
        kernel = Route(str(net), dev, proto="kernel", scope=SCOPE_LINK, src=eni_ip)
    else:
        kernel = Route(str(net), dev, proto="kernel")
    rule = None if trunk else IpRule(ENI_PRIMARY_IP_PRIORITY, table, src=f"{eni_ip}/{host_len}",
                                     family=net.version)
    return EniNetwork(dev, table, mtu, Address(eni_ip, net.prefixlen, dev), routes, kernel, rule)


# --- pods (CNI ADD/DEL) ------------------------------------------------------------------------

def pod_eni_table(route_table_id: int) -> int:
    """The table a pod's traffic leaves by: ipamd's RouteTableId when > 1, else main."""
    return route_table_id if route_table_id > 1 else MAIN_TABLE


@dataclass(frozen=True)
class PodHostSide:
    """In the node: the /32 route to the pod and its 512 (and, off the primary ENI, 1536) rule."""

    route: Route
    rules: tuple[IpRule, ...]


def pod_host_side(pod_ip: str, host_veth: str, route_table_id: int) -> PodHostSide:
    net = ipaddress.ip_network(pod_ip, strict=False)
    dst = f"{net.network_address}/{net.max_prefixlen}"
    route = Route(dst, host_veth, scope=SCOPE_LINK)
    rules = [IpRule(TO_CONTAINER_PRIORITY, MAIN_TABLE, dst=dst, family=net.version)]
    table = pod_eni_table(route_table_id)
    if table != MAIN_TABLE:
        rules.append(IpRule(FROM_CONTAINER_PRIORITY, table, src=dst, family=net.version))
    return PodHostSide(route, tuple(rules))


def pod_teardown_rules(pod_ip: str, route_table_id: int) -> tuple[IpRule, ...]:
    """DEL: the 512 rule, and the 1536 rule unless the table is main or the legacy value 1 (the
    rules ADD made)."""
    return pod_host_side(pod_ip, "", route_table_id).rules


@dataclass(frozen=True)
class PodSide:
    """Inside the pod for interface i: address, gateway routes, optional rule, static neighbour."""

    address: Address
    routes: tuple[Route, ...]
    rule: IpRule | None
    neighbour: Neighbour
    gateway: str
    table: int


def pod_side(pod_ip: str, cont_iface: str, host_veth_mac: str, index: int = 0) -> PodSide:
    """Gateway 169.254.1.(i+1) on-link, default via it, the pod /32, gateway → host veth MAC."""
    net = ipaddress.ip_network(pod_ip, strict=False)
    gw = names.pod_gateway_ip(index, net.version)
    table = names.pod_route_table(index)
    routes = (Route(f"{gw}/{net.max_prefixlen}", cont_iface, scope=SCOPE_LINK, table=table),
              Route("default", cont_iface, via=gw, table=table))
    rule = None
    if index > 0:
        rule = IpRule(POD_IN_PRIORITY, table, src=f"{net.network_address}/{net.max_prefixlen}",
                      family=net.version)
    address = Address(str(net.network_address), net.max_prefixlen, cont_iface)
    return PodSide(address, routes, rule, Neighbour(gw, cont_iface, host_veth_mac), gw, table)


@dataclass(frozen=True)
class BranchPodNetwork:
    """SGP branch-ENI pod in the node: VLAN link, its table's routes, and the pod's rules."""

    vlan_link: str
    table: int
    routes: tuple[Route, ...]
    rules: tuple[IpRule, ...]


def branch_pod_network(pod_ip: str, host_veth: str, vlan_id: int, subnet_gw: str,
                       enforcing_mode: str = "strict") -> BranchPodNetwork:
    """Strict mode routes by incoming interface (prio 10); standard uses the 512/1536 rules."""
    vlan = names.vlan_link_name(vlan_id)
    table = names.vlan_route_table(vlan_id)
    gw_len = 128 if ":" in subnet_gw else 32
    net = ipaddress.ip_network(pod_ip, strict=False)
    dst = f"{net.network_address}/{net.max_prefixlen}"
    routes = [Route(f"{subnet_gw}/{gw_len}", vlan, scope=SCOPE_LINK, table=table),
              Route("default", vlan, via=subnet_gw, table=table)]
    if enforcing_mode == "strict":
        routes.append(Route(dst, host_veth, scope=SCOPE_LINK, table=table))
        rules = (IpRule(VLAN_RULE_PRIORITY, table, iif=vlan, family=net.version),
                 IpRule(VLAN_RULE_PRIORITY, table, iif=host_veth, family=net.version))
    else:
        routes.append(Route(dst, host_veth, scope=SCOPE_LINK))
        rules = (IpRule(TO_CONTAINER_PRIORITY, MAIN_TABLE, dst=dst, family=net.version),
                 IpRule(FROM_CONTAINER_PRIORITY, table, src=dst, family=net.version))
    return BranchPodNetwork(vlan, table, tuple(routes), rules)
