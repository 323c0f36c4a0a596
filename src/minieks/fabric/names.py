"""Names of everything the fabric makes, all derived from the lab name (DESIGN.md principle 4).

Namespaces (files in /run/netns, at most 64 characters):
  mek-<lab>-vpc    the implicit VPC router: one veth port per attached ENI
  mek-<lab>-igw    the internet gateway (1:1 NAT between primary and public addresses)
  mek-<lab>-inet   the stand-in internet (203.0.113.0/24 hosts answering ping, HTTP)
  mek-<lab>-n<i>   node i, one per running instance; i is the node index, given in launch order
                   (1, 2, ...) and never reused within a lab. The instance id is kept in the
                   kernel as the alias of the node's `lo` (`ip netns exec mek-<lab>-n1 ip link
                   show lo` prints `alias i-...`), so a restarted fabric finds its nodes again.
  mek-<lab>-n<i>-* left to the kubelet for pods, so one prefix still removes the whole lab.
Interfaces (at most 15 characters):
  eth<dev>         an ENI in its node (network card 0; card c > 0: eth<dev>c<c>)
  n<i>e<dev>       the VPC end of that ENI's veth (card c > 0: n<i>c<c>e<dev>); its alias is
                   the ENI id.
The lab name is lowercase letters and digits only, so no lab's prefix (`mek-<lab>-`) can match
another lab's namespaces; a leading `mek-` is accepted and dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "mek-"
_LAB = re.compile(r"^[a-z0-9]{1,20}$")
MAX_NODES = 9999


class BadName(ValueError):
    """A lab name or index that would break the naming rules."""


def lab_name(lab: str) -> str:
    """The bare lab name (`mek-t1a2b3c` and `t1a2b3c` are the same lab)."""
    bare = lab[len(PREFIX):] if lab.startswith(PREFIX) else lab
    if not _LAB.match(bare):
        raise BadName(f"lab name {lab!r}: use 1-20 lowercase letters and digits (optionally after mek-)")
    return bare


@dataclass(frozen=True)
class LabNames:
    """Every name of one lab."""

    lab: str

    @classmethod
    def of(cls, lab: str) -> LabNames:
        return cls(lab_name(lab))

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.lab}-"

    @property
    def vpc(self) -> str:
        return self.prefix + "vpc"

    @property
    def igw(self) -> str:
        return self.prefix + "igw"

    @property
    def inet(self) -> str:
        return self.prefix + "inet"

    def node(self, index: int) -> str:
        _check_index(index)
        return f"{self.prefix}n{index}"

    def node_index(self, namespace: str) -> int | None:
        """The index of a node namespace of this lab, None for any other name (pods included)."""
        match = re.fullmatch(re.escape(self.prefix) + r"n([1-9][0-9]{0,3})", namespace)
        return int(match.group(1)) if match else None


def _check_index(index: int) -> None:
    if not 1 <= index <= MAX_NODES:
        raise BadName(f"node index {index} outside 1..{MAX_NODES}")


def node_ifname(device_index: int, card: int = 0) -> str:
    """The ENI's interface in its node, as Amazon Linux 2 names it for card 0."""
    return f"eth{device_index}" if card == 0 else f"eth{device_index}c{card}"


def port_name(node_index: int, device_index: int, card: int = 0) -> str:
    """The VPC end of an ENI's veth: which node and which device, readable in `ip link`."""
    _check_index(node_index)
    name = f"n{node_index}e{device_index}" if card == 0 else f"n{node_index}c{card}e{device_index}"
    if len(name) > 15:
        raise BadName(f"interface name {name!r} longer than 15 characters")
    return name


def port_node_index(name: str) -> int | None:
    """The node index a VPC port name carries (`n3e1` -> 3), None for other links."""
    match = re.fullmatch(r"n([1-9][0-9]{0,3})(?:c[0-9]+)?e[0-9]+", name)
    return int(match.group(1)) if match else None
