"""What the fabric needs to know of the EC2 emulator's state, copied out as plain frozen data.

The fabric never keeps references into `svc.state`: each read takes `svc._lock` just long enough
to copy what matters (which VPC, which instances run, which ENI is attached where with which
addresses), so kernel work happens outside EC2's lock and always on a consistent picture.
Everything below the readers is a pure function of these views.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minieks.ec2.address_space import ip_str

if TYPE_CHECKING:
    from minieks.ec2.model import Instance, NetworkInterface
    from minieks.ec2.service import Ec2Service

LIVE_STATES = ("pending", "running")   # an instance whose node namespace should exist


@dataclass(frozen=True)
class VpcView:
    id: str
    cidr: str

    @property
    def resolver(self) -> str:
        """The Amazon-provided DNS server: the VPC range's base plus two."""
        return str(ipaddress.IPv4Network(self.cidr).network_address + 2)


@dataclass(frozen=True)
class EniView:
    id: str
    mac: str
    vpc_id: str
    subnet_cidr: str
    primary_ip: str
    secondary_ips: tuple[str, ...]
    prefixes: tuple[str, ...]            # "a.b.c.d/28"
    public_ip: str | None
    instance_id: str | None              # attachment, if any
    device_index: int | None
    card: int | None
    is_primary: bool                     # the instance's primary ENI (device 0, card 0)

    @property
    def gateway(self) -> str:
        """The subnet router: the subnet's base plus one."""
        return str(ipaddress.IPv4Network(self.subnet_cidr).network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet_cidr).prefixlen

    def destinations(self) -> frozenset[str]:
        """What the VPC routes to this ENI: each address as a /32, each prefix as its /28."""
        singles = [f"{ip}/32" for ip in (self.primary_ip, *self.secondary_ips)]
        return frozenset([*singles, *self.prefixes])


@dataclass(frozen=True)
class InstanceView:
    id: str
    state: str
    vpc_id: str
    primary_eni_id: str

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


@dataclass(frozen=True)
class LabView:
    """The whole picture at one moment: what a full reconcile works from."""

    vpc: VpcView | None
    region: str
    instances: dict[str, InstanceView]   # in launch order
    enis: dict[str, EniView]

    def live_instances(self) -> list[InstanceView]:
        return [i for i in self.instances.values() if self.vpc and i.vpc_id == self.vpc.id and i.live]

    def enis_of(self, instance_id: str) -> list[EniView]:
        found = [e for e in self.enis.values() if e.instance_id == instance_id]
        return sorted(found, key=lambda e: (e.card, e.device_index))

    def public_mapping(self) -> dict[str, str]:
        """Primary private address -> public address, for every ENI of the VPC that has one."""
        if not self.vpc:
            return {}
        return {e.primary_ip: e.public_ip for e in self.enis.values()
                if e.public_ip and e.vpc_id == self.vpc.id}


def addresses(destination: str) -> list[str]:
    """Every address a destination covers (one for a /32, sixteen for a /28)."""
    network = ipaddress.IPv4Network(destination)
    return [str(a) for a in network] if network.prefixlen < 32 else [str(network.network_address)]


# ------------------------------------------------------------------------------------ readers
def _vpc(svc: Ec2Service, vpc_id: str | None) -> VpcView | None:
    vpc = svc.state.vpcs.get(vpc_id) if vpc_id else next(iter(svc.state.vpcs.values()), None)
    return VpcView(vpc.id, vpc.cidr_block) if vpc else None


def _eni(svc: Ec2Service, eni: NetworkInterface) -> EniView:
    attachment = eni.attachment
    instance = svc.state.instances.get(attachment.instance_id) if attachment else None
    return EniView(
        id=eni.id, mac=eni.mac, vpc_id=eni.vpc_id, subnet_cidr=svc.state.subnets[eni.subnet_id].cidr_block,
        primary_ip=ip_str(eni.primary_ip), secondary_ips=tuple(ip_str(i) for i in eni.secondary_ips),
        prefixes=tuple(f"{ip_str(p)}/28" for p in eni.prefixes), public_ip=eni.public_ip,
        instance_id=attachment.instance_id if attachment else None,
        device_index=attachment.device_index if attachment else None,
        card=attachment.network_card_index if attachment else None,
        is_primary=bool(instance and instance.primary_eni_id == eni.id),
    )


def _instance(instance: Instance) -> InstanceView:
    return InstanceView(instance.id, instance.state, instance.vpc_id, instance.primary_eni_id)


def vpc(svc: Ec2Service, vpc_id: str | None = None) -> VpcView | None:
    """The lab's VPC: the one asked for, else the first one created; None before any."""
    with svc._lock:
        return _vpc(svc, vpc_id)


def eni(svc: Ec2Service, eni_id: str) -> EniView | None:
    with svc._lock:
        found = svc.state.enis.get(eni_id)
        return _eni(svc, found) if found else None


def instance(svc: Ec2Service, instance_id: str) -> tuple[InstanceView | None, list[EniView]]:
    """One instance and its attached ENIs (by card, then device)."""
    with svc._lock:
        found = svc.state.instances.get(instance_id)
        if found is None:
            return None, []
        enis = [_eni(svc, e) for e in svc.state.enis.values()
                if e.attachment and e.attachment.instance_id == instance_id]
    return _instance(found), sorted(enis, key=lambda e: (e.card, e.device_index))


def snapshot(svc: Ec2Service, vpc_id: str | None = None) -> LabView:
    with svc._lock:
        return LabView(_vpc(svc, vpc_id), svc.region,
                       {i.id: _instance(i) for i in svc.state.instances.values()},
                       {e.id: _eni(svc, e) for e in svc.state.enis.values()})


def public_mapping(svc: Ec2Service, vpc_id: str) -> dict[str, str]:
    with svc._lock:
        return {ip_str(e.primary_ip): e.public_ip for e in svc.state.enis.values()
                if e.public_ip and e.vpc_id == vpc_id}
