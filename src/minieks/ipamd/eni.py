"""What the datastore holds: ENIs, their CIDRs (/32 secondary IPs, /28 prefixes, IPv6 prefixes)
and the pod addresses handed out from them (spec §4.1).

These are plain records; datastore.py owns the rules (who may take an address, when it may be
freed). Ordering helpers here define the deterministic order the datastore walks them in:
ENIs by device number, CIDRs by address — upstream walks Go maps, which is random.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

MAIN_ROUTE_TABLE = 254
MIN_ENI_LIFETIME = 60.0  # seconds: a younger ENI is never freed (minENILifeTime)


@dataclass(frozen=True, order=True)
class IPAMKey:
    """The CNI's primary key for one pod interface: (network name, CNI_CONTAINERID, CNI_IFNAME)."""

    network_name: str = ""
    container_id: str = ""
    if_name: str = ""

    def __str__(self) -> str:
        return f"{self.network_name}/{self.container_id}/{self.if_name}"

    def is_zero(self) -> bool:
        return not (self.network_name or self.container_id or self.if_name)


@dataclass(frozen=True)
class IPAMMetadata:
    """Who a pod is, kept in the checkpoint so a restart can tell live pods from dead ones."""

    k8s_pod_namespace: str = ""
    k8s_pod_name: str = ""
    interfaces_count: int = 0


@dataclass
class Address:
    """One pod address. Created on first assignment; kept after release to enforce the cooldown."""

    address: str
    key: IPAMKey = IPAMKey()
    metadata: IPAMMetadata = IPAMMetadata()
    assigned_time: float | None = None   # clock seconds
    allocation_ns: int = 0               # Unix nanoseconds, as the checkpoint stores it
    unassigned_time: float | None = None  # clock seconds

    @property
    def assigned(self) -> bool:
        return not self.key.is_zero()

    def in_cooldown(self, now: float, period: float) -> bool:
        """Released no more than `period` seconds ago (upstream: time.Since(...) <= period)."""
        return self.unassigned_time is not None and now - self.unassigned_time <= period


@dataclass
class Cidr:
    """A /32 secondary IP, a /28 prefix or an IPv6 prefix on an ENI, with its handed-out addresses."""

    network: IPNetwork
    is_prefix: bool = False
    addresses: dict[str, Address] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return str(self.network.version)

    @functools.cached_property
    def size(self) -> int:
        return self.network.num_addresses

    @property
    def assigned_count(self) -> int:
        return sum(1 for a in self.addresses.values() if a.assigned)

    def counts(self, now: float, period: float) -> tuple[int, int]:
        """(assigned, cooling down) in one pass over the addresses: ipamd wants both every cycle."""
        assigned = cooling = 0
        for address in self.addresses.values():
            if address.assigned:
                assigned += 1
            elif address.in_cooldown(now, period):
                cooling += 1
        return assigned, cooling

    def sorted_addresses(self) -> list[Address]:
        return sorted(self.addresses.values(), key=lambda a: ipaddress.ip_address(a.address))


@dataclass
class Eni:
    """An ENI as ipamd tracks it (upstream datastore.ENI)."""

    id: str
    device_number: int
    create_time: float
    route_table_id: int
    is_primary: bool = False
    is_trunk: bool = False
    is_efa: bool = False
    subnet_id: str = ""
    excluded_for_pod_ips: bool = False
    ipv4_cidrs: dict[str, Cidr] = field(default_factory=dict)
    ipv6_cidrs: dict[str, Cidr] = field(default_factory=dict)

    def sorted_cidrs(self, family: str = "4") -> list[Cidr]:
        cidrs = self.ipv4_cidrs if family == "4" else self.ipv6_cidrs
        return sorted(cidrs.values(), key=lambda c: (int(c.network.network_address), c.network.prefixlen))

    def all_cidrs(self) -> list[Cidr]:
        return self.sorted_cidrs("4") + self.sorted_cidrs("6")

    @property
    def assigned_count(self) -> int:
        return sum(c.assigned_count for c in (*self.ipv4_cidrs.values(), *self.ipv6_cidrs.values()))

    def has_pods(self) -> bool:
        return self.assigned_count > 0

    def has_ip_in_cooldown(self, now: float, period: float) -> bool:
        return any(a.in_cooldown(now, period) and not a.assigned
                   for c in self.ipv4_cidrs.values() for a in c.addresses.values())

    def too_young(self, now: float) -> bool:
        return now - self.create_time < MIN_ENI_LIFETIME


def route_table_id(device_number: int, network_card: int = 0) -> int:
    """CalculateRouteTableId: main (254) for device 0 on card 0, device+1 on card 0,
    10000 + device + 100·card on other cards."""
    if network_card == 0:
        return MAIN_ROUTE_TABLE if device_number == 0 else device_number + 1
    return 10000 + device_number + 100 * network_card


def next_ip(address: str) -> str:
    """The next address, carrying across octets (and wrapping at the top, as Go's byte loop does)."""
    ip = ipaddress.ip_address(address)
    top = 2**ip.max_prefixlen
    return str(ipaddress.ip_address((int(ip) + 1) % top) if ip.version == 4
               else ipaddress.IPv6Address((int(ip) + 1) % top))


def parse_network(cidr: str | IPNetwork) -> IPNetwork:
    """Accept "a.b.c.d/nn" (host bits cleared as the datastore keys it) or a network object."""
    if isinstance(cidr, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return cidr
    return ipaddress.ip_network(cidr, strict=False)
