"""ipamd's NodeNetwork port on a real kernel: one node's network namespace.

Upstream's networkutils (SetupHostNetwork, SetupENINetwork, rule clean-up; spec §6) acts on the
host it runs on. Here ipamd runs in the root namespace and this adapter acts only inside the
node's lab namespace: netlink through an IPRoute opened there, sysctls written from a thread
inside it, iptables/nft through `ip netns exec`. What to program comes from the pure builders
(rules.py, iptables.py, nftables.py); this class only finds the links and applies the plan.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from pyroute2 import NetlinkError

from minieks.fabric import netns
from minieks.ipamd.awsutils import EniInfo
from minieks.ipamd.checkpoint import RuleDelete
from minieks.ipamd.config import IpamdConfig
from minieks.netsetup import firewall, netlink, rules
from minieks.netsetup.iptables import HostIptables, HostIptablesConfig
from minieks.netsetup.names import MAIN_TABLE
from minieks.netsetup.rules import EniSetupError, IpRule

log = logging.getLogger("ipamd")

MAC_LOOKUP_TRIES = 5          # upstream: 5 tries, 3 s apart, before giving up on an ENI
MAC_LOOKUP_INTERVAL = 3.0
ROUTE_TRIES = 5


class NodeNetworkError(RuntimeError):
    """A kernel step failed; str() follows upstream's wording where it has one."""


def _table_number(table: str) -> int:
    """RuleDelete's table words ("main", "unspec") as netlink numbers (0 = any table)."""
    words = {"main": MAIN_TABLE, "unspec": 0, "local": 255, "default": 253}
    return words[table] if table in words else int(table)


class KernelNodeNetwork:
    """SetupHostNetwork / SetupENINetwork and ipamd's rule clean-ups inside `node_ns`."""

    def __init__(self, node_ns: str, config: IpamdConfig, *, disable_tcp_early_demux: bool = False,
                 mac_lookup_tries: int = MAC_LOOKUP_TRIES,
                 mac_lookup_interval: float = MAC_LOOKUP_INTERVAL):
        self.node_ns = netns.check_name(node_ns)
        self.config = config
        self.disable_tcp_early_demux = disable_tcp_early_demux
        self.mac_lookup_tries = mac_lookup_tries
        self.mac_lookup_interval = mac_lookup_interval
        self.last_iptables: HostIptables | None = None     # what the last SetupHostNetwork planned
        self.backends: firewall.Backends | None = None      # for awscni_connmark_backend{backend}

    @contextlib.contextmanager
    def _ipr(self) -> Iterator[Any]:
        with netns.iproute(self.node_ns) as ipr:
            yield ipr

    @property
    def _ipv4(self) -> bool:
        """IPv4 cluster unless IPv6 is on without IPv4 (the two never run together)."""
        return not (self.config.enable_ipv6 and not self.config.enable_ipv4)

    # ------------------------------------------------------------------------- host (§6.1-6.4)
    def setup_host_network(self, vpc_cidrs: list[str], primary_ip: str, primary_mac: str) -> None:
        """sysctls, primary MTU, rule 1024, SNAT/connmark state and the 1535 rules."""
        with self._ipr() as ipr:
            primary = self._link_by_mac(ipr, primary_mac, tries=1)
            name = netlink.link_name(primary)
            self._host_sysctls(name)
            ipr.link("set", index=primary["index"], mtu=self.config.eni_mtu)
            changes = rules.host_rule_changes(self.config.node_port_support, self.config.external_snat,
                                              self._ipv4, self.config.connmark)
            for rule in changes.delete:
                netlink.delete_rule(ipr, rule)
            for rule in changes.add:
                netlink.add_rule(ipr, rule)
            self.backends = self.backends or firewall.detect_backends(self.node_ns)
            self.last_iptables = firewall.apply_host_iptables(self.node_ns, self._iptables_config(
                name, primary_ip, vpc_cidrs), self.backends)
            external = rules.external_service_rule_changes(netlink.list_rules(ipr),
                                                           self.config.external_service_cidrs)
            for rule in external.delete:
                netlink.delete_rule(ipr, rule)
            for rule in external.add:
                netlink.add_rule(ipr, rule)

    def _host_sysctls(self, primary: str) -> None:
        """What aws-vpc-cni-init sets: loose rp_filter on the primary ENI, tcp_early_demux."""
        netns.sysctl(self.node_ns, f"net.ipv4.conf.{primary}.rp_filter", 2)
        with contextlib.suppress(FileNotFoundError):
            netns.sysctl(self.node_ns, "net.ipv4.tcp_early_demux",
                         0 if self.disable_tcp_early_demux else 1)
        if self.config.enable_ipv6 or self.config.enable_v6_egress:
            if self.config.enable_ipv6:
                netns.sysctl(self.node_ns, "net.ipv6.conf.all.disable_ipv6", 0)
            netns.sysctl(self.node_ns, "net.ipv6.conf.all.forwarding", 1)
            netns.sysctl(self.node_ns, f"net.ipv6.conf.{primary}.accept_ra", 2)

    def _iptables_config(self, primary: str, primary_ip: str, vpc_cidrs: list[str]) -> HostIptablesConfig:
        c = self.config
        return HostIptablesConfig(
            primary_iface=primary, primary_ip=primary_ip, vpc_cidrs=tuple(vpc_cidrs),
            exclude_snat_cidrs=tuple(c.exclude_snat_cidrs), external_snat=c.external_snat,
            node_port_support=c.node_port_support, randomize_snat=c.randomize_snat,  # type: ignore[arg-type]
            veth_prefix=c.veth_prefix, mark=c.connmark, ipv6=not self._ipv4,
            v6_egress=c.enable_v6_egress)

    # ------------------------------------------------------------------------------ ENIs (§6.3)
    def setup_eni_network(self, eni: EniInfo, route_table: int) -> None:
        """Address, MTU, table routes via the subnet gateway, no main subnet route, rule 32765."""
        if route_table == MAIN_TABLE:
            raise EniSetupError("setupENINetwork should never be called on the primary ENI")
        with self._ipr() as ipr:
            link = self._link_by_mac(ipr, eni.mac, tries=self.mac_lookup_tries)
            index, dev = link["index"], netlink.link_name(link)
            plan = rules.eni_network(dev, eni.primary_ip, eni.subnet_cidr, route_table,
                                     self.config.eni_mtu, trunk=eni.interface_type == "trunk")
            ipr.link("set", index=index, mtu=plan.mtu, state="up")
            self._set_only_address(ipr, index, plan.address)
            for route in plan.routes:
                self._retry(f"setupENINetwork: unable to replace route entry {route.dst}",
                            lambda r=route: self._reset_route(ipr, r, index))
            netlink.delete_route(ipr, plan.main_route_to_delete, index)
            if plan.rule and plan.rule not in netlink.list_rules(ipr):
                netlink.add_rule(ipr, plan.rule)

    def _link_by_mac(self, ipr: Any, mac: str, tries: int) -> Any:
        for attempt in range(max(tries, 1)):
            name = next((n for n, m in netlink.link_macs(self.node_ns).items() if m == mac.lower()), None)
            found = netlink.link_by_name(ipr, name) if name else None
            if found is not None:
                return found
            if attempt + 1 < tries:
                time.sleep(self.mac_lookup_interval)
        raise NodeNetworkError(f"setupENINetwork: failed to find the link which uses MAC address {mac}")

    @staticmethod
    def _set_only_address(ipr: Any, index: int, address: rules.Address) -> None:
        """Every global address goes, then the ENI's primary IP with the subnet's length."""
        for addr in ipr.addr("dump", index=index, family=2):
            if addr["scope"] == netlink.SCOPE_UNIVERSE:
                with netlink.ignoring(*netlink.GONE):
                    ipr.addr("del", index=index, address=addr.get_attr("IFA_ADDRESS"),
                             prefixlen=addr["prefixlen"])
        ipr.addr("add", index=index, address=address.ip, prefixlen=address.prefixlen)

    @staticmethod
    def _reset_route(ipr: Any, route: rules.Route, index: int) -> None:
        netlink.delete_route(ipr, route, index)
        netlink.replace_route(ipr, route, index)

    @staticmethod
    def _retry(what: str, attempt: Any) -> None:
        delay = 0.1
        for n in range(ROUTE_TRIES):
            try:
                attempt()
                return
            except NetlinkError as err:
                if n == ROUTE_TRIES - 1:
                    raise NodeNetworkError(f"{what}: {netlink.go_error(err)}") from err
                time.sleep(delay)
                delay *= 2

    def remove_eni_rules(self, eni_primary_ip: str) -> None:
        """A freed ENI's `32765 from <ip> lookup <table>` rule (any table) goes with it."""
        rule = IpRule(rules.ENI_PRIMARY_IP_PRIORITY, 0, src=f"{eni_primary_ip}/32")
        with self._ipr() as ipr:
            netlink.delete_rule(ipr, rule, all_matches=True)

    # ------------------------------------------------------------------- checkpoint clean-ups
    def host_links(self) -> list[str] | None:
        """Link names in the node (restore keeps checkpoint entries whose host veth exists)."""
        return list(netlink.link_macs(self.node_ns))

    def delete_rules(self, rules_to_delete: Iterable[RuleDelete]) -> None:
        """Stale pods' 512/1536 rules; ones already gone are fine."""
        with self._ipr() as ipr:
            for item in rules_to_delete:
                table = _table_number(item.table)
                rule = IpRule(item.priority, table, src=item.src or None, dst=item.dst or None)
                netlink.delete_rule(ipr, rule, all_matches=table == 0)

    def update_pod_rule(self, pod_ip: str, route_table: int) -> None:
        """UpdateRuleListBySrc: a restored pod's rules from its IP become one 1536 rule."""
        with self._ipr() as ipr:
            changes = rules.rules_by_src_rewrite(netlink.list_rules(ipr), f"{pod_ip}/32")
            for rule in changes.delete:
                with netlink.ignoring(errno.ENOENT):
                    netlink.delete_rule(ipr, rule)
            for rule in changes.add:
                netlink.add_rule(ipr, rule)
