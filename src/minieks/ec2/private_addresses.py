"""Secondary private addresses and /28 prefixes on ENIs: Assign and Unassign, with EC2's limits.

An ENI has as many address slots as its instance type's IPv4-per-ENI: the primary address takes
one, each secondary address one, each /28 prefix one. Exceeding that is
PrivateIpAddressLimitExceeded; running the subnet dry is InsufficientFreeAddressesInSubnet, or
InsufficientCidrBlocks when no whole aligned /28 is left. A request is applied whole or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minieks.aws import instance_types
from minieks.ec2 import lookup
from minieks.ec2.address_space import ip_int, ip_str
from minieks.ec2.errors import Ec2Error, invalid, missing
from minieks.ec2.registry import action, require

if TYPE_CHECKING:
    from minieks.ec2.model import NetworkInterface
    from minieks.ec2.service import Ec2Service

LIMIT_EXCEEDED = ("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.")
UNATTACHED_SLOT_LIMIT = max(t.ipv4_per_eni for t in instance_types.catalog().values())


def slot_limit(svc: Ec2Service, eni: NetworkInterface) -> int:
    """Address slots the ENI may hold: its instance type's limit once attached."""
    if eni.attachment:
        return svc.state.instances[eni.attachment.instance_id].instance_type.ipv4_per_eni
    return UNATTACHED_SLOT_LIMIT


def _parse_ips(values: list[str]) -> list[int]:
    try:
        return [ip_int(v) for v in values]
    except ValueError as err:
        raise invalid(f"Invalid IPv4 address: {err}") from None


def _parse_prefixes(values: list[str]) -> list[int]:
    out = []
    for value in values:
        address, _, length = value.partition("/")
        if length != "28":
            raise invalid(f"Invalid value '{value}' for Ipv4Prefix: only /28 prefixes are supported")
        out.extend(_parse_ips([address]))
    return out


def add_to_eni(svc: Ec2Service, eni: NetworkInterface, count: int = 0, addresses: list[str] = (),
               prefix_count: int = 0, prefixes: list[str] = ()) -> tuple[list[int], list[int]]:
    """Give `eni` new addresses and prefixes from its subnet; all or nothing."""
    if count < 0 or prefix_count < 0:
        raise invalid("The count of addresses or prefixes must not be negative")
    explicit_ips, explicit_prefixes = _parse_ips(list(addresses)), _parse_prefixes(list(prefixes))
    wanted = count + len(explicit_ips) + prefix_count + len(explicit_prefixes)
    if eni.slots_used + wanted > slot_limit(svc, eni):
        raise Ec2Error(*LIMIT_EXCEEDED)
    space = svc.state.subnets[eni.subnet_id].space
    new_ips: list[int] = []
    new_prefixes: list[int] = []
    try:
        if explicit_ips:
            space.claim_addresses(explicit_ips)
            new_ips += explicit_ips
        if count:
            new_ips += space.allocate_addresses(count)
        if explicit_prefixes:
            space.claim_prefixes(explicit_prefixes)
            new_prefixes += explicit_prefixes
        if prefix_count:
            new_prefixes += space.allocate_prefixes(prefix_count)
    except Ec2Error:
        for ip in new_ips:
            space.release_address(ip)
        for prefix in new_prefixes:
            space.release_prefix(prefix)
        raise
    eni.secondary_ips.extend(new_ips)
    eni.prefixes.extend(new_prefixes)
    return new_ips, new_prefixes


def release_all(svc: Ec2Service, eni: NetworkInterface) -> None:
    space = svc.state.subnets[eni.subnet_id].space
    for ip in [eni.primary_ip, *eni.secondary_ips]:
        space.release_address(ip)
    for prefix in eni.prefixes:
        space.release_prefix(prefix)


@action("AssignPrivateIpAddresses")
def assign_private_ip_addresses(svc: Ec2Service, p: dict) -> dict:
    eni = lookup.eni(svc, require(p, "NetworkInterfaceId"))
    kinds = [k for k in ("PrivateIpAddresses", "SecondaryPrivateIpAddressCount", "Ipv4Prefixes", "Ipv4PrefixCount")
             if p.get(k)]
    if not kinds:
        raise missing("SecondaryPrivateIpAddressCount or PrivateIpAddresses or Ipv4PrefixCount or Ipv4Prefixes")
    if len(kinds) > 1:
        raise Ec2Error("InvalidParameterCombination",
                       f"The parameters {' and '.join(kinds)} cannot be specified together")
    ips, prefixes = add_to_eni(svc, eni, count=p.get("SecondaryPrivateIpAddressCount") or 0,
                               addresses=p.get("PrivateIpAddresses") or [],
                               prefix_count=p.get("Ipv4PrefixCount") or 0, prefixes=p.get("Ipv4Prefixes") or [])
    svc.touch("eni", eni.id, eni)
    svc.emit("addresses-assigned", eni_id=eni.id, ips=[ip_str(i) for i in ips],
             prefixes=[f"{ip_str(x)}/28" for x in prefixes])
    out: dict = {"NetworkInterfaceId": eni.id}
    if ips or not prefixes:
        out["AssignedPrivateIpAddresses"] = [{"PrivateIpAddress": ip_str(i)} for i in ips]
    if prefixes:
        out["AssignedIpv4Prefixes"] = [{"Ipv4Prefix": f"{ip_str(x)}/28"} for x in prefixes]
    return out


@action("UnassignPrivateIpAddresses")
def unassign_private_ip_addresses(svc: Ec2Service, p: dict) -> dict:
    eni = lookup.eni(svc, require(p, "NetworkInterfaceId"))
    ips = _parse_ips(p.get("PrivateIpAddresses") or [])
    prefixes = _parse_prefixes(p.get("Ipv4Prefixes") or [])
    if not ips and not prefixes:
        raise missing("PrivateIpAddresses or Ipv4Prefixes")
    if eni.primary_ip in ips:
        raise invalid(f"The primary private IP address of network interface {eni.id} cannot be unassigned.")
    held_ips, held_prefixes = set(eni.secondary_ips), set(eni.prefixes)
    if any(ip not in held_ips for ip in ips) or any(x not in held_prefixes for x in prefixes):
        raise invalid(f"Some of the specified addresses are not assigned to interface {eni.id}")
    space = svc.state.subnets[eni.subnet_id].space
    drop_ips, drop_prefixes = set(ips), set(prefixes)
    eni.secondary_ips = [i for i in eni.secondary_ips if i not in drop_ips]
    eni.prefixes = [x for x in eni.prefixes if x not in drop_prefixes]
    for ip in ips:
        space.release_address(ip)
    for prefix in prefixes:
        space.release_prefix(prefix)
    svc.touch("eni", eni.id, eni)
    svc.emit("addresses-unassigned", eni_id=eni.id, ips=[ip_str(i) for i in ips],
             prefixes=[f"{ip_str(x)}/28" for x in prefixes])
    return {}
