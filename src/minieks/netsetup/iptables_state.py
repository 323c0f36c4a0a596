"""An in-memory iptables rule set for one address family: tables, chains, rules, and changes.

It plays the kernel's part so that reconciliation can be planned and checked without one:
`IptablesState.parse` reads `iptables -S` dumps, `Change`s are what upstream does one command
at a time (-N, -I 1, -A, -D, -F, -X), `apply` replays them, `dump` prints `iptables -S`, and
`restore_text` turns a list of changes into one atomic `iptables-restore --noflush` batch.
Rules keep the argument order they were written in; equality is by rendered text.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from minieks.netsetup.iptables_render import render_rule, render_spec, split_saved

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}

ChangeKind = Literal["new_chain", "insert", "append", "delete", "flush", "delete_chain"]


class IptablesStateError(RuntimeError):
    """A change the kernel would refuse (unknown chain, missing rule, chain in use)."""


@dataclass(frozen=True)
class Change:
    """One iptables command: `kind` on `table`/`chain`, with the rule spec where one applies."""

    kind: ChangeKind
    table: str
    chain: str
    spec: tuple[str, ...] = ()

    def restore_line(self, family: int = 4) -> str:
        """This change as a line of `iptables-restore` input."""
        body = render_spec(self.spec, family) if self.spec else ""
        if self.kind == "new_chain":
            return f":{self.chain} - [0:0]"
        if self.kind == "insert":
            return f"-I {self.chain} 1 {body}".rstrip()
        if self.kind == "append":
            return f"-A {self.chain} {body}".rstrip()
        if self.kind == "delete":
            return f"-D {self.chain} {body}".rstrip()
        if self.kind == "flush":
            return f"-F {self.chain}"
        return f"-X {self.chain}"


@dataclass
class Chain:
    name: str
    builtin: bool
    rules: list[tuple[str, ...]] = field(default_factory=list)
    policy: str = "ACCEPT"


@dataclass
class IptablesState:
    """The rule set of one family (4: iptables, 6: ip6tables), table by table."""

    family: int = 4
    tables: dict[str, dict[str, Chain]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Chain]:
        if name not in self.tables:
            self.tables[name] = {c: Chain(c, True) for c in BUILTIN_CHAINS.get(name, ())}
        return self.tables[name]

    def copy(self) -> IptablesState:
        return copy.deepcopy(self)

    def has_chain(self, table: str, chain: str) -> bool:
        return chain in self.table(table)

    def chain_names(self, table: str) -> list[str]:
        """Chains in `iptables -S` order: built-ins in kernel order, then user chains by name."""
        chains = self.table(table)
        builtins = [c for c in chains.values() if c.builtin]
        users = sorted((c for c in chains.values() if not c.builtin), key=lambda c: c.name)
        return [c.name for c in builtins + users]

    def rules(self, table: str, chain: str) -> list[tuple[str, ...]]:
        return list(self._chain(table, chain).rules)

    def find(self, table: str, chain: str, spec: Sequence[str]) -> int:
        """Index of the first rule equal to `spec` (as `iptables -C` compares), or -1."""
        if not self.has_chain(table, chain):
            return -1
        wanted = render_spec(spec, self.family)
        for index, rule in enumerate(self._chain(table, chain).rules):
            if render_spec(rule, self.family) == wanted:
                return index
        return -1

    def exists(self, table: str, chain: str, spec: Sequence[str]) -> bool:
        return self.find(table, chain, spec) >= 0

    def apply(self, change: Change) -> None:
        """Do what the kernel does for one command, refusing what it refuses."""
        chains = self.table(change.table)
        if change.kind == "new_chain":
            if change.chain in chains:
                raise IptablesStateError(f"iptables: Chain already exists: {change.chain}")
            chains[change.chain] = Chain(change.chain, False)
            return
        chain = self._chain(change.table, change.chain)
        if change.kind == "insert":
            chain.rules.insert(0, tuple(change.spec))
        elif change.kind == "append":
            chain.rules.append(tuple(change.spec))
        elif change.kind == "delete":
            index = self.find(change.table, change.chain, change.spec)
            if index < 0:
                raise IptablesStateError("iptables: Bad rule (does a matching rule exist in that chain?).")
            del chain.rules[index]
        elif change.kind == "flush":
            chain.rules.clear()
        elif change.kind == "delete_chain":
            if chain.builtin or chain.rules or self._referenced(change.table, change.chain):
                raise IptablesStateError(f"iptables: Directory not empty / Too many links: {change.chain}")
            del chains[change.chain]

    def apply_all(self, changes: Iterable[Change]) -> None:
        for change in changes:
            self.apply(change)

    def dump(self, table: str) -> str:
        """The text of `iptables -t <table> -S` (no trailing newline)."""
        chains = self.table(table)
        names = self.chain_names(table)
        lines = [f"-P {n} {chains[n].policy}" for n in names if chains[n].builtin]
        lines += [f"-N {n}" for n in names if not chains[n].builtin]
        for name in names:
            lines += [render_rule(name, rule, self.family) for rule in chains[name].rules]
        return "\n".join(lines)

    @classmethod
    def parse(cls, dumps: dict[str, str], family: int = 4) -> IptablesState:
        """Read `iptables -t <table> -S` outputs, one per table name."""
        state = cls(family)
        for table, text in dumps.items():
            chains = state.table(table)
            for line in text.splitlines():
                args = split_saved(line)
                if not args:
                    continue
                if args[0] == "-P":
                    chains.setdefault(args[1], Chain(args[1], True)).policy = args[2]
                elif args[0] == "-N":
                    chains.setdefault(args[1], Chain(args[1], False))
                elif args[0] == "-A":
                    chains.setdefault(args[1], Chain(args[1], False)).rules.append(tuple(args[2:]))
        return state

    def _chain(self, table: str, chain: str) -> Chain:
        try:
            return self.table(table)[chain]
        except KeyError:
            raise IptablesStateError(
                f"iptables: No chain/target/match by that name: {table}/{chain}"
            ) from None

    def _referenced(self, table: str, chain: str) -> bool:
        for other in self.table(table).values():
            for rule in other.rules:
                args = list(rule)
                for i, arg in enumerate(args[:-1]):
                    if arg in ("-j", "--jump", "-g", "--goto") and args[i + 1] == chain:
                        return True
        return False


def restore_text(changes: Sequence[Change], family: int = 4) -> str:
    """An `iptables-restore --noflush` batch doing `changes` atomically, table by table.

    New chains are declared first in each table (a declaration of an existing user chain would
    flush it under --noflush, so only chains the changes create are declared); the rest keep
    their order, which is what makes position-1 inserts come out reversed as upstream's do.
    """
    tables: dict[str, list[Change]] = {}
    for change in changes:
        tables.setdefault(change.table, []).append(change)
    out: list[str] = []
    for table, group in tables.items():
        out.append(f"*{table}")
        out += [c.restore_line(family) for c in group if c.kind == "new_chain"]
        out += [c.restore_line(family) for c in group if c.kind != "new_chain"]
        out.append("COMMIT")
    return "\n".join(out) + ("\n" if out else "")
