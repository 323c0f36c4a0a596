"""EC2 instance types and their network limits, loaded once from the shipped table.

The table (`data/ec2-instance-types.csv`) is the VPC CNI's own per-type limits with vCPU and
memory added from DescribeInstanceTypes. Everything that needs ENI or address limits (the
max-pods calculator, the EC2 emulator, ipamd) asks this module, so the numbers have one source.
"""

from __future__ import annotations

import csv
import difflib
import fnmatch
import functools
import re
from dataclasses import dataclass
from importlib import resources

PD_IPS_PER_PREFIX = 16


class UnknownInstanceType(LookupError):
    """Raised for a type the table does not hold; the message suggests close names."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown instance type '{name}'{hint}")


@dataclass(frozen=True)
class InstanceType:
    """One row of the table: what EC2's DescribeInstanceTypes says about a type's networking."""

    name: str
    max_enis: int                      # ENIs on the default network card (the CNI's ENILimit)
    ipv4_per_eni: int                  # IPv4 addresses per ENI, the ENI's primary included
    hypervisor: str                    # nitro, xen or unknown
    bare_metal: bool
    network_cards: int
    default_network_card_index: int
    max_enis_per_network_card: tuple[int, ...]
    vcpus: int | None                  # None where DescribeInstanceTypes data lacks the type
    memory_mib: int | None
    ipv6_per_eni: int | None

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def size(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else ""

    @property
    def supports_prefix_delegation(self) -> bool:
        """As the VPC CNI decides it (IsPrefixDelegationSupported): Nitro or bare metal."""
        return self.hypervisor == "nitro" or self.bare_metal

    @property
    def total_enis(self) -> int:
        """ENIs across every network card (the CNI uses only the default card's)."""
        return sum(self.max_enis_per_network_card)


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _parse_row(row: dict[str, str]) -> InstanceType:
    return InstanceType(
        name=row["instance_type"],
        max_enis=int(row["max_enis"]),
        ipv4_per_eni=int(row["ipv4_per_eni"]),
        hypervisor=row["hypervisor"] or "unknown",
        bare_metal=row["bare_metal"] == "true",
        network_cards=int(row["network_cards"]),
        default_network_card_index=int(row["default_network_card_index"]),
        max_enis_per_network_card=tuple(int(n) for n in row["max_enis_per_network_card"].split(";")),
        vcpus=_optional_int(row["vcpus"]),
        memory_mib=_optional_int(row["memory_mib"]),
        ipv6_per_eni=_optional_int(row["ipv6_per_eni"]),
    )


@functools.cache
def catalog() -> dict[str, InstanceType]:
    """Every known type by name, parsed once per process."""
    source = resources.files("minieks.aws").joinpath("data/ec2-instance-types.csv")
    with source.open(newline="") as handle:
        return {t.name: t for t in map(_parse_row, csv.DictReader(handle))}


def get(name: str) -> InstanceType:
    """The type called `name`, or UnknownInstanceType with close names to suggest."""
    try:
        return catalog()[name]
    except KeyError:
        raise UnknownInstanceType(name, suggest(name)) from None


def suggest(name: str, limit: int = 3) -> list[str]:
    names = list(catalog())
    close = difflib.get_close_matches(name, names, n=limit, cutoff=0.6)
    if not close and "." in name:  # a right family with a wrong size: offer the family's sizes
        family = name.split(".", 1)[0] + "."
        close = sorted(n for n in names if n.startswith(family))[:limit]
    return close


_SIZE_RANK = {"nano": 0, "micro": 1, "small": 2, "medium": 3, "large": 4, "xlarge": 5}


def natural_key(t: InstanceType) -> tuple:
    """Family, then size as people read it (nano < … < xlarge < 2xlarge < … < metal)."""
    size = t.size
    match = re.fullmatch(r"(\d+)xlarge", size)
    if size in _SIZE_RANK:
        rank = (_SIZE_RANK[size], 0)
    elif match:
        rank = (5, int(match.group(1)))
    else:
        rank = (9, 0)
    return (t.family, rank, size)


def match(patterns: list[str]) -> list[InstanceType]:
    """Types matching any glob pattern (as EC2's instance-type filter does), in natural order.

    A pattern without wildcards that names no type raises UnknownInstanceType; a wildcard
    pattern that matches nothing simply contributes nothing, as an EC2 filter would.
    """
    found: dict[str, InstanceType] = {}
    for pattern in patterns:
        if not any(ch in pattern for ch in "*?["):
            t = get(pattern)
            found[t.name] = t
            continue
        for name, t in catalog().items():
            if fnmatch.fnmatchcase(name, pattern):
                found[name] = t
    return sorted(found.values(), key=natural_key)
