"""The nftables connmark backend (spec §6.4): table `ip aws-cni`, as `nft -f` input and listing.

On hosts whose iptables is nf_tables-based, upstream keeps the outbound-connection connmark in
a native table instead of AWS-CONNMARK-CHAIN-0. `connmark_table` describes it; `nft_script`
is what the kernel layer feeds to `nft -f` (replacing the table atomically), `nft_listing` is
what `nft list table ip aws-cni` prints afterwards (counters at zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TABLE_FAMILY = "ip"
TABLE_NAME = "aws-cni"
BASE_CHAIN = "nat-prerouting"
MARK_CHAIN = "snat-mark"


@dataclass(frozen=True)
class NftRule:
    """One rule: its statements in order; `counter` marks where a counter statement goes."""

    statements: tuple[str, ...]

    def text(self, listing: bool) -> str:
        parts = ["counter packets 0 bytes 0" if s == "counter" and listing else s
                 for s in self.statements]
        return " ".join(parts)


@dataclass(frozen=True)
class NftChain:
    name: str
    rules: tuple[NftRule, ...]
    hook: str | None = None  # e.g. "type nat hook prerouting priority dstnat + 10; policy accept;"


@dataclass(frozen=True)
class NftTable:
    family: str
    name: str
    chains: tuple[NftChain, ...]


def connmark_table(veth_prefix: str, mark: int, exempt_cidrs: Sequence[str]) -> NftTable:
    """Mark pod connections to non-exempt destinations and restore the mark on every packet."""
    if not exempt_cidrs:
        raise ValueError("exemptCIDRs cannot be empty")
    mark_text = f"0x{mark:08x}"
    base = NftChain(BASE_CHAIN, (
        NftRule(("fib daddr type local return",)),
        NftRule((f'iifname "{veth_prefix}*"', "counter", f"jump {MARK_CHAIN}")),
        NftRule(("counter", f"meta mark set ct mark & {mark_text}")),
    ), hook="type nat hook prerouting priority dstnat + 10; policy accept;")
    returns = tuple(NftRule(("counter", f"ip daddr {cidr} return")) for cidr in exempt_cidrs)
    marker = NftChain(MARK_CHAIN, returns + (
        NftRule(("counter", f"ct mark set ct mark | {mark_text}")),
    ))
    return NftTable(TABLE_FAMILY, TABLE_NAME, (base, marker))


def _body(table: NftTable, listing: bool) -> list[str]:
    lines = [f"table {table.family} {table.name} {{"]
    for chain in table.chains:
        lines.append(f"\tchain {chain.name} {{")
        if chain.hook:
            lines.append(f"\t\t{chain.hook}")
        lines += [f"\t\t{rule.text(listing)}" for rule in chain.rules]
        lines.append("\t}")
    lines.append("}")
    return lines


def nft_listing(table: NftTable) -> str:
    """The text of `nft list table <family> <name>` right after the table is loaded."""
    return "\n".join(_body(table, listing=True))


def nft_script(table: NftTable) -> str:
    """`nft -f` input that replaces the table in one transaction (create, delete, re-add)."""
    head = [f"table {table.family} {table.name}", f"delete table {table.family} {table.name}"]
    return "\n".join(head + _body(table, listing=False)) + "\n"


def nft_delete_script(family: str = TABLE_FAMILY, name: str = TABLE_NAME) -> str:
    """`nft -f` input removing the table if present (what the iptables backend does once)."""
    return f"table {family} {name}\ndelete table {family} {name}\n"
