"""Apply SetupHostNetwork's iptables and nftables state inside one node namespace.

iptables.py decides (against the node's current `iptables -S`) what must change; this module
only reads the current rules, picks the connmark backend the way upstream does (`iptables
--version` says legacy → iptables chain, otherwise the native `ip aws-cni` table), and feeds one
`iptables-restore --noflush` batch and one `nft -f` transaction to the kernel, each atomic. Every
command runs through `ip netns exec <node>`, so it can be replayed by hand.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace

from minieks.fabric import netns
from minieks.netsetup import nftables
from minieks.netsetup.iptables import (Backend, HostIptables, HostIptablesConfig,
                                       connmark_backend_for, host_iptables_plans, plan_host_iptables)
from minieks.netsetup.iptables_state import IptablesState

log = logging.getLogger("ipamd")

TABLES = ("filter", "nat", "mangle")
_TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}


@dataclass(frozen=True)
class Backends:
    """Which connmark backend upstream's detection picks, and whether `nft` can carry it here."""

    iptables_version: str
    connmark: Backend
    nft_available: bool

    @property
    def effective(self) -> Backend:
        """nftables needs the nft tool; without it the iptables chain does the same job."""
        return "nftables" if self.connmark == "nftables" and self.nft_available else "iptables"


def detect_backends(node_ns: str) -> Backends:
    version = netns.run(node_ns, ["iptables", "--version"]).stdout.strip()
    return Backends(version, connmark_backend_for(version), shutil.which("nft") is not None)


def current_rules(node_ns: str, family: int = 4) -> IptablesState:
    """The node's rule set as `iptables -t <table> -S` prints it, table by table."""
    tool = _TOOLS[family][0]
    dumps = {t: netns.run(node_ns, [tool, "-t", t, "-S"]).stdout for t in TABLES}
    return IptablesState.parse(dumps, family)


def apply_host_iptables(node_ns: str, cfg: HostIptablesConfig,
                        backends: Backends | None = None) -> HostIptables:
    """Reconcile iptables (both families where needed) and the nft connmark table; the plan."""
    backends = backends or detect_backends(node_ns)
    if backends.connmark == "nftables" and not backends.nft_available:
        log.warning("iptables is %r but nft is missing: connmark rules go to %s instead",
                    backends.iptables_version, "AWS-CONNMARK-CHAIN-0")
    cfg = replace(cfg, connmark_backend=backends.effective)
    plans = host_iptables_plans(cfg)
    current = {4: current_rules(node_ns, 4)}
    if plans[6].intents:
        current[6] = current_rules(node_ns, 6)
    planned = plan_host_iptables(cfg, current)
    for family in sorted(planned.changes):
        text = planned.restore(family)
        if text:
            netns.run(node_ns, [_TOOLS[family][1], "--noflush"], input=text)
    if backends.nft_available:
        netns.run(node_ns, ["nft", "-f", "-"], input=nft_input(cfg))
    return planned


def nft_input(cfg: HostIptablesConfig) -> str:
    """Load the connmark table (nftables backend with in-node SNAT), else make sure it is gone."""
    if cfg.connmark_backend == "nftables" and not cfg.external_snat and not cfg.ipv6:
        exempt = list(cfg.vpc_cidrs) + list(cfg.exclude_snat_cidrs)
        return nftables.nft_script(nftables.connmark_table(cfg.veth_prefix, cfg.mark, exempt))
    return nftables.nft_delete_script()
