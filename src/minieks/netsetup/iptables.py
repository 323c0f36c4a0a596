"""The iptables state SetupHostNetwork wants on a node (spec §6.4), as data and as text.

Upstream reconciles rule by rule (`-C`, then `-I 1` for per-CIDR RETURN rules, `-A` for the
rest, `-D` for rules that must go) and prunes foreign rules from its own chains. Here the same
decisions are made against an `IptablesState` (parsed from `iptables -S` or empty), giving the
list of `Change`s, the resulting `-S` text, and one `iptables-restore --noflush` batch the kernel
layer applies atomically inside the node namespace. The nftables connmark table is in nftables.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from minieks.netsetup.iptables_render import render_spec
from minieks.netsetup.iptables_state import Change, IptablesState, restore_text

SNAT_CHAIN = "AWS-SNAT-CHAIN-0"
CONNMARK_CHAIN = "AWS-CONNMARK-CHAIN-0"
SNAT_CHAIN_PREFIX = "AWS-SNAT-CHAIN"
CONNMARK_CHAIN_PREFIX = "AWS-CONNMARK-CHAIN"
DEFAULT_MARK = 0x80
IPV6_NODE_LOCAL_CIDR = "169.254.172.0/22"
IPV4_EGRESS_NODE_LOCAL_CIDR = "fd00::ac:00/118"

Backend = Literal["iptables", "nftables"]
RandomizeSnat = Literal["prng", "hashrandom", "none"]


@dataclass(frozen=True)
class HostIptablesConfig:
    """What SetupHostNetwork's iptables part depends on (env values already parsed)."""

    primary_iface: str
    primary_ip: str
    vpc_cidrs: tuple[str, ...]
    exclude_snat_cidrs: tuple[str, ...] = ()
    external_snat: bool = False
    node_port_support: bool = True
    randomize_snat: RandomizeSnat = "prng"
    random_fully_supported: bool = True
    veth_prefix: str = "eni"
    mark: int = DEFAULT_MARK
    connmark_backend: Backend = "iptables"
    ipv6: bool = False
    v6_egress: bool = False


@dataclass(frozen=True)
class RuleIntent:
    """One rule upstream checks: wanted (`present`) or to be removed, and where it goes."""

    table: str
    chain: str
    spec: tuple[str, ...]
    present: bool = True
    position: Literal["insert", "append"] = "append"


@dataclass(frozen=True)
class IptablesPlan:
    """Everything to reconcile for one address family, in upstream's order."""

    family: int = 4
    ensure_chains: tuple[tuple[str, str], ...] = ()
    intents: tuple[RuleIntent, ...] = ()
    prune_chain_prefixes: tuple[tuple[str, str], ...] = ()
    remove_chains: tuple[tuple[str, str], ...] = ()


def snat_random_flag(randomize: str, random_fully_supported: bool = True) -> str | None:
    """The SNAT flag for AWS_VPC_K8S_CNI_RANDOMIZESNAT (prng falls back to --random)."""
    if randomize == "none":
        return None
    if randomize == "hashrandom" or not random_fully_supported:
        return "--random"
    return "--random-fully"


def cidr_return_spec(cidr: str, comment: str) -> tuple[str, ...]:
    """A per-CIDR RETURN rule; 0.0.0.0/0 is written without `-d` (iptables never prints it)."""
    match = () if cidr in ("0.0.0.0/0", "::/0") else ("-d", cidr)
    return match + ("-m", "comment", "--comment", comment, "-j", "RETURN")


def _mark(mark: int) -> str:
    return f"{mark:#x}"


def snat_intents(cfg: HostIptablesConfig) -> list[RuleIntent]:
    """POSTROUTING jump, RETURN per VPC CIDR and exclusion, then the SNAT rule (§6.4)."""
    want = not cfg.external_snat
    intents = [RuleIntent("nat", "POSTROUTING",
                          ("-m", "comment", "--comment", "AWS SNAT CHAIN", "-j", SNAT_CHAIN), want)]
    for cidr in cfg.vpc_cidrs:
        intents.append(RuleIntent("nat", SNAT_CHAIN, cidr_return_spec(cidr, "AWS SNAT CHAIN"),
                                  want, "insert"))
    for cidr in cfg.exclude_snat_cidrs:
        intents.append(RuleIntent("nat", SNAT_CHAIN,
                                  cidr_return_spec(cidr, "AWS SNAT CHAIN EXCLUSION"), want, "insert"))
    snat = ["!", "-o", "vlan+", "-m", "comment", "--comment", "AWS, SNAT", "-m", "addrtype",
            "!", "--dst-type", "LOCAL", "-j", "SNAT", "--to-source", cfg.primary_ip]
    flag = snat_random_flag(cfg.randomize_snat, cfg.random_fully_supported)
    if flag:
        snat.append(flag)
    intents.append(RuleIntent("nat", SNAT_CHAIN, tuple(snat), want))
    return intents


def connmark_jump_spec(veth_prefix: str, legacy_state_match: bool = False) -> tuple[str, ...]:
    """nat PREROUTING jump for pod-originated traffic (the legacy form adds `-m state NEW`)."""
    state = ("-m", "state", "--state", "NEW") if legacy_state_match else ()
    return ("-i", f"{veth_prefix}+", "-m", "comment", "--comment", "AWS, outbound connections",
            *state, "-j", CONNMARK_CHAIN)


def connmark_restore_spec(mark: int) -> tuple[str, ...]:
    return ("-m", "comment", "--comment", "AWS, CONNMARK", "-j", "CONNMARK",
            "--restore-mark", "--mask", _mark(mark))


def connmark_set_spec(mark: int) -> tuple[str, ...]:
    return ("-m", "comment", "--comment", "AWS, CONNMARK", "-j", "CONNMARK",
            "--set-xmark", f"{_mark(mark)}/{_mark(mark)}")


def connmark_setup_intents(veth_prefix: str, mark: int, exempt_cidrs: Sequence[str]) -> list[RuleIntent]:
    """The legacy-iptables connmark backend's rules (iptables_connmark.go Setup)."""
    if not exempt_cidrs:
        raise ValueError("exemptCIDRs cannot be empty")
    intents = [RuleIntent("nat", "PREROUTING", connmark_jump_spec(veth_prefix))]
    intents += [RuleIntent("nat", CONNMARK_CHAIN, cidr_return_spec(c, "AWS CONNMARK CHAIN"),
                           True, "insert") for c in exempt_cidrs]
    intents.append(RuleIntent("nat", "PREROUTING", connmark_restore_spec(mark)))
    intents.append(RuleIntent("nat", CONNMARK_CHAIN, connmark_set_spec(mark)))
    intents.append(RuleIntent("nat", "PREROUTING", connmark_jump_spec(veth_prefix, True), False))
    return intents


def connmark_cleanup_intents(veth_prefix: str, mark: int) -> list[RuleIntent]:
    """Removal of the iptables connmark rules (external SNAT, or the nftables backend)."""
    return [RuleIntent("nat", "PREROUTING", connmark_jump_spec(veth_prefix), False),
            RuleIntent("nat", "PREROUTING", connmark_jump_spec(veth_prefix, True), False),
            RuleIntent("nat", "PREROUTING", connmark_restore_spec(mark), False)]


def mangle_intents(cfg: HostIptablesConfig) -> list[RuleIntent]:
    """The mangle PREROUTING connmark rules that steer replies out of the primary ENI."""
    restore = ("-j", "CONNMARK", "--restore-mark", "--mask", _mark(cfg.mark))
    comment = ("-m", "comment", "--comment", "AWS, primary ENI")
    return [
        RuleIntent("mangle", "PREROUTING",
                   (*comment, "-i", cfg.primary_iface, "-m", "addrtype", "--dst-type", "LOCAL",
                    "--limit-iface-in", "-j", "CONNMARK", "--set-mark",
                    f"{_mark(cfg.mark)}/{_mark(cfg.mark)}"),
                   cfg.node_port_support),
        RuleIntent("mangle", "PREROUTING", (*comment, "-i", f"{cfg.veth_prefix}+", *restore),
                   cfg.node_port_support or not cfg.external_snat),
        RuleIntent("mangle", "PREROUTING", (*comment, "-i", "vlan+", *restore),
                   cfg.node_port_support),
    ]


def node_local_block_spec(family: int) -> tuple[str, ...]:
    """FORWARD rule keeping other hosts off the egress plugin's node-local pod range."""
    cidr = IPV6_NODE_LOCAL_CIDR if family == 4 else IPV4_EGRESS_NODE_LOCAL_CIDR
    label = "IPv4" if family == 4 else "IPv6"
    return ("-d", cidr, "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
            f"Block Node Local Pod access via {label}", "-j", "REJECT")


def connmark_action(cfg: HostIptablesConfig) -> Literal["Setup", "Cleanup"]:
    """Whether SetupHostNetwork sets the outbound-connection connmark up or removes it."""
    return "Cleanup" if cfg.external_snat else "Setup"


def host_iptables_plans(cfg: HostIptablesConfig) -> dict[int, IptablesPlan]:
    """The per-family plans of SetupHostNetwork; IPv6 mode only blocks the v4 node-local range."""
    if cfg.ipv6:
        block = RuleIntent("filter", "FORWARD", node_local_block_spec(4), True, "insert")
        return {4: IptablesPlan(4, intents=(block,)), 6: IptablesPlan(6)}
    intents = snat_intents(cfg)
    ensure = [("nat", SNAT_CHAIN)]
    prune = [("nat", SNAT_CHAIN_PREFIX)]
    remove: list[tuple[str, str]] = []
    if not cfg.external_snat and cfg.connmark_backend == "iptables":
        ensure.append(("nat", CONNMARK_CHAIN))
        intents += connmark_setup_intents(cfg.veth_prefix, cfg.mark,
                                          list(cfg.vpc_cidrs) + list(cfg.exclude_snat_cidrs))
        prune.append(("nat", CONNMARK_CHAIN))
    else:
        intents += connmark_cleanup_intents(cfg.veth_prefix, cfg.mark)
        remove.append(("nat", CONNMARK_CHAIN))
    intents += mangle_intents(cfg)
    v6 = IptablesPlan(6)
    if cfg.v6_egress:
        v6 = IptablesPlan(6, intents=(RuleIntent("filter", "FORWARD", node_local_block_spec(6),
                                                 True, "insert"),))
    return {4: IptablesPlan(4, tuple(ensure), tuple(intents), tuple(prune), tuple(remove)), 6: v6}


def reconcile(plan: IptablesPlan, current: IptablesState) -> list[Change]:
    """The commands that take `current` to the plan's state, as upstream would issue them."""
    sim = current.copy()
    changes: list[Change] = []

    def do(change: Change) -> None:
        sim.apply(change)
        changes.append(change)

    for table, chain in plan.ensure_chains:
        if not sim.has_chain(table, chain):
            do(Change("new_chain", table, chain))
    for intent in plan.intents:
        if not sim.has_chain(intent.table, intent.chain):
            continue
        exists = sim.exists(intent.table, intent.chain, intent.spec)
        if intent.present and not exists:
            do(Change(intent.position, intent.table, intent.chain, intent.spec))
        elif not intent.present and exists:
            do(Change("delete", intent.table, intent.chain, intent.spec))
    for table, prefix in plan.prune_chain_prefixes:
        for chain in sim.chain_names(table):
            if chain.startswith(prefix):
                _prune(sim, plan, table, chain, do)
    for table, chain in plan.remove_chains:
        if sim.has_chain(table, chain):
            _drop_references(sim, table, chain, do)
            do(Change("flush", table, chain))
            do(Change("delete_chain", table, chain))
    return changes


def _prune(sim: IptablesState, plan: IptablesPlan, table: str, chain: str, do) -> None:
    wanted = {render_spec(i.spec, plan.family) for i in plan.intents
              if i.present and i.table == table and i.chain == chain}
    for rule in sim.rules(table, chain):
        if render_spec(rule, plan.family) not in wanted:
            do(Change("delete", table, chain, rule))


def _drop_references(sim: IptablesState, table: str, target: str, do) -> None:
    """Delete leftover jumps to a chain about to go (e.g. ones written with an old veth prefix).

    Upstream deletes only the rules it builds and logs the failed chain deletion otherwise;
    deleting every reference keeps the batch valid, so one restore always succeeds.
    """
    for chain in sim.chain_names(table):
        for rule in sim.rules(table, chain):
            args = list(rule)
            if any(a in ("-j", "--jump") and b == target for a, b in zip(args, args[1:])):
                do(Change("delete", table, chain, rule))


def stale_chain_changes(current: IptablesState) -> list[Change]:
    """CleanUpStaleAWSChains: with the pre-1.12 AWS-SNAT-CHAIN-1 present, drop every chain N>0."""
    if not current.has_chain("nat", "AWS-SNAT-CHAIN-1"):
        return []
    stale = []
    for chain in current.chain_names("nat"):
        if chain.startswith((SNAT_CHAIN_PREFIX + "-", CONNMARK_CHAIN_PREFIX + "-")):
            number = chain.rsplit("-", 1)[1]
            if number.isdigit() and int(number) != 0:
                stale.append(chain)
    sim = current.copy()
    changes: list[Change] = []
    for chain in stale:
        for owner in sim.chain_names("nat"):
            if owner in stale:
                continue
            for rule in sim.rules("nat", owner):
                args = list(rule)
                if any(a in ("-j", "--jump") and b == chain for a, b in zip(args, args[1:])):
                    changes.append(Change("delete", "nat", owner, rule))
                    sim.apply(changes[-1])
    changes += [Change("flush", "nat", chain) for chain in stale]
    changes += [Change("delete_chain", "nat", chain) for chain in stale]
    return changes


@dataclass
class HostIptables:
    """Result of planning SetupHostNetwork's iptables part against a node's current rules."""

    changes: dict[int, list[Change]] = field(default_factory=dict)
    states: dict[int, IptablesState] = field(default_factory=dict)

    def dump(self, table: str, family: int = 4) -> str:
        """`iptables -t <table> -S` (family 6: `ip6tables`) after the changes."""
        return self.states[family].dump(table)

    def restore(self, family: int = 4) -> str:
        """The `iptables-restore --noflush` (or ip6tables-restore) input doing the changes."""
        return restore_text(self.changes.get(family, []), family)


def plan_host_iptables(cfg: HostIptablesConfig,
                       current: Mapping[int, IptablesState] | None = None) -> HostIptables:
    """Plan SetupHostNetwork's iptables against `current` (empty rule sets when omitted)."""
    result = HostIptables()
    for family, plan in host_iptables_plans(cfg).items():
        state = (current or {}).get(family) or IptablesState(family)
        changes = reconcile(plan, state)
        after = state.copy()
        after.apply_all(changes)
        result.changes[family] = changes
        result.states[family] = after
    return result


def connmark_backend_for(iptables_version: str) -> Backend:
    """Pick the connmark backend from `iptables --version` output ("legacy" → iptables)."""
    return "iptables" if "legacy" in iptables_version else "nftables"
