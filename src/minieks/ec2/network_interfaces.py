"""ENIs: create, attach, detach, delete, modify and describe, with EC2's limits and errors.

Attach enforces what ipamd runs into on real nodes: the instance type's ENI count per network
card (AttachmentLimitExceeded), one ENI per device index, same availability zone, and the
instance type's address slots for an ENI that already carries addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minieks.ec2 import filters, lookup
from minieks.ec2.address_space import ip_str
from minieks.ec2.errors import Ec2Error, invalid
from minieks.ec2.model import ACCOUNT_ID, Attachment, NetworkInterface, now_utc
from minieks.ec2.private_addresses import LIMIT_EXCEEDED, _parse_ips, add_to_eni, release_all
from minieks.ec2.registry import action, require

if TYPE_CHECKING:
    from minieks.ec2.model import Subnet
    from minieks.ec2.service import Ec2Service


def _groups(svc: Ec2Service, subnet: Subnet, group_ids: list[str] | None) -> list[tuple[str, str]]:
    default = svc.state.vpcs[subnet.vpc_id].default_security_group
    if not group_ids:
        return [(default, "default")]
    for gid in group_ids:
        if not gid.startswith("sg-"):
            raise Ec2Error("InvalidGroupId.Malformed", f'Invalid id: "{gid}"')
    return [(gid, "default" if gid == default else gid) for gid in sorted(group_ids)]


def new_eni(svc: Ec2Service, subnet: Subnet, p: dict, tags: dict[str, str]) -> NetworkInterface:
    """An ENI in `subnet` with its primary address and whatever extra addresses `p` asks for."""
    primary_list = [a for a in p.get("PrivateIpAddresses") or [] if a.get("Primary")]
    explicit_primary = p.get("PrivateIpAddress") or (primary_list[0]["PrivateIpAddress"] if primary_list else None)
    extra = [a["PrivateIpAddress"] for a in p.get("PrivateIpAddresses") or [] if not a.get("Primary")]
    count = p.get("SecondaryPrivateIpAddressCount") or 0
    prefix_count = p.get("Ipv4PrefixCount") or 0
    prefixes = [x["Ipv4Prefix"] for x in p.get("Ipv4Prefixes") or []]
    if (count or extra) and (prefix_count or prefixes):
        raise Ec2Error("InvalidParameterCombination",
                       "You cannot specify both secondary private IPv4 addresses and IPv4 prefixes")
    space = subnet.space
    groups = _groups(svc, subnet, p.get("Groups"))           # may refuse: before any address is taken
    if explicit_primary:
        [primary] = _parse_ips([explicit_primary])           # a bad address is InvalidParameterValue
        space.claim_addresses([primary])
    else:
        [primary] = space.allocate_addresses(1)
    eni = NetworkInterface(
        id="", subnet_id=subnet.id, vpc_id=subnet.vpc_id, availability_zone=subnet.availability_zone,
        mac="", primary_ip=primary, region=svc.region, description=p.get("Description", ""),
        groups=groups, tags=tags,
        interface_type=p.get("InterfaceType") or "interface",
    )
    try:
        add_to_eni(svc, eni, count=count, addresses=extra, prefix_count=prefix_count, prefixes=prefixes)
    except Ec2Error:
        space.release_address(primary)
        raise
    eni.id, eni.mac = svc.ids.new("eni"), svc.ids.mac()
    svc.state.enis[eni.id] = eni
    svc.touch("eni", eni.id, eni)
    return eni


@action("CreateNetworkInterface")
def create_network_interface(svc: Ec2Service, p: dict) -> dict:
    subnet = lookup.subnet(svc, require(p, "SubnetId"))
    eni = new_eni(svc, subnet, p, lookup.tags_for(p, "network-interface"))
    svc.emit("eni-created", eni_id=eni.id, subnet_id=subnet.id, ip=ip_str(eni.primary_ip))
    return {"NetworkInterface": eni.to_api()}


def attach(svc: Ec2Service, eni: NetworkInterface, instance_id: str, device_index: int, card: int,
           delete_on_termination: bool = False) -> Attachment:
    instance = lookup.instance(svc, instance_id)
    if instance.state not in ("running", "stopped", "pending"):
        raise Ec2Error("IncorrectInstanceState",
                       f"The instance '{instance.id}' is not in a valid state for this operation.")
    if eni.attachment:
        raise Ec2Error("InvalidNetworkInterface.InUse", f"Interface: [{eni.id}] in use.")
    if eni.availability_zone != instance.availability_zone:
        raise Ec2Error("InvalidParameterCombination", "You may not attach a network interface to an instance "
                       "if they are not in the same availability zone")
    itype = instance.instance_type
    if not 0 <= card < itype.network_cards:
        raise invalid(f"Invalid value '{card}' for NetworkCardIndex. Instance type {itype.name} supports "
                      f"network card indexes 0 to {itype.network_cards - 1}.")
    if device_index < 0:
        raise invalid(f"Invalid value '{device_index}' for deviceIndex")
    on_card = [e for e in attached_enis(svc, instance.id) if e.attachment.network_card_index == card]
    if any(e.attachment.device_index == device_index for e in on_card):
        raise invalid(f"Instance '{instance.id}' already has an interface attached at device index '{device_index}'.")
    limit = itype.max_enis_per_network_card[card] if card < len(itype.max_enis_per_network_card) else itype.max_enis
    if len(on_card) + 1 > limit:
        total = len(attached_enis(svc, instance.id)) + 1
        raise Ec2Error("AttachmentLimitExceeded", f"Interface count {total} exceeds the limit for {itype.name}")
    if eni.slots_used > itype.ipv4_per_eni:
        raise Ec2Error(*LIMIT_EXCEEDED)
    eni.attachment = Attachment(svc.ids.new("eni-attach"), instance.id, device_index, card, now_utc(),
                                delete_on_termination)
    svc.touch("eni", eni.id, eni)
    svc.emit("eni-attached", eni_id=eni.id, instance_id=instance.id, device_index=device_index,
             network_card_index=card, mac=eni.mac)
    return eni.attachment


def attached_enis(svc: Ec2Service, instance_id: str) -> list[NetworkInterface]:
    return [e for e in svc.state.enis.values() if e.attachment and e.attachment.instance_id == instance_id]


@action("AttachNetworkInterface")
def attach_network_interface(svc: Ec2Service, p: dict) -> dict:
    eni = lookup.eni(svc, require(p, "NetworkInterfaceId"))
    instance_id = require(p, "InstanceId")
    device_index = p.get("DeviceIndex")
    if device_index is None:
        require(p, "DeviceIndex")
    card = p.get("NetworkCardIndex") or 0
    attachment = attach(svc, eni, instance_id, device_index, card)
    return {"AttachmentId": attachment.id, "NetworkCardIndex": card}


def _by_attachment(svc: Ec2Service, attachment_id: str) -> NetworkInterface:
    for eni in svc.state.enis.values():
        if eni.attachment and eni.attachment.id == attachment_id:
            return eni
    raise Ec2Error("InvalidAttachmentID.NotFound", f"The attachment ID '{attachment_id}' does not exist")


def detach(svc: Ec2Service, eni: NetworkInterface) -> None:
    attachment = eni.attachment
    eni.attachment = None
    svc.touch("eni", eni.id, eni)
    svc.emit("eni-detached", eni_id=eni.id, instance_id=attachment.instance_id,
             device_index=attachment.device_index, network_card_index=attachment.network_card_index)


@action("DetachNetworkInterface")
def detach_network_interface(svc: Ec2Service, p: dict) -> dict:
    eni = _by_attachment(svc, require(p, "AttachmentId"))
    instance = svc.state.instances[eni.attachment.instance_id]
    if eni.id == instance.primary_eni_id:
        raise Ec2Error("OperationNotPermitted", "The network interface at device index 0 and networkCard index 0 "
                       "cannot be detached.")
    detach(svc, eni)
    return {}


def delete(svc: Ec2Service, eni: NetworkInterface) -> None:
    release_all(svc, eni)
    if eni.public_ip:
        svc.state.public_ips.discard(eni.public_ip)
    del svc.state.enis[eni.id]
    svc.touch("eni", eni.id, None)
    svc.emit("eni-deleted", eni_id=eni.id, ips=[ip_str(i) for i in [eni.primary_ip, *eni.secondary_ips]],
             prefixes=[f"{ip_str(x)}/28" for x in eni.prefixes])


@action("DeleteNetworkInterface")
def delete_network_interface(svc: Ec2Service, p: dict) -> dict:
    eni = lookup.eni(svc, require(p, "NetworkInterfaceId"))
    if eni.attachment:
        raise invalid(f"Network interface '{eni.id}' is currently in use.")
    delete(svc, eni)
    return {}


@action("ModifyNetworkInterfaceAttribute")
def modify_network_interface_attribute(svc: Ec2Service, p: dict) -> dict:
    eni = lookup.eni(svc, require(p, "NetworkInterfaceId"))
    changes = [k for k in ("Attachment", "Description", "SourceDestCheck", "Groups") if p.get(k) is not None]
    if len(changes) != 1:
        raise Ec2Error("InvalidParameterCombination", "Exactly one attribute must be specified per request")
    if "Attachment" in p:
        wanted = p["Attachment"]
        if not eni.attachment or wanted.get("AttachmentId") != eni.attachment.id:
            raise Ec2Error("InvalidAttachmentID.NotFound",
                           f"The attachment ID '{wanted.get('AttachmentId')}' does not exist")
        eni.attachment.delete_on_termination = bool(wanted.get("DeleteOnTermination"))
    elif "Description" in p:
        eni.description = p["Description"].get("Value", "")
    elif "SourceDestCheck" in p:
        eni.source_dest_check = bool(p["SourceDestCheck"].get("Value"))
    else:
        eni.groups = _groups(svc, svc.state.subnets[eni.subnet_id], p["Groups"])
    svc.touch("eni", eni.id, eni)
    return {}


def _addresses(e: NetworkInterface) -> list[str]:
    return [ip_str(i) for i in [e.primary_ip, *e.secondary_ips]]


ENI_FILTERS = {
    "network-interface-id": lambda e: e.id,
    "attachment.instance-id": lambda e: e.attachment.instance_id if e.attachment else None,
    "attachment.attachment-id": lambda e: e.attachment.id if e.attachment else None,
    "attachment.status": lambda e: e.attachment.status if e.attachment else None,
    "attachment.device-index": lambda e: str(e.attachment.device_index) if e.attachment else None,
    "attachment.network-card-index": lambda e: str(e.attachment.network_card_index) if e.attachment else None,
    "attachment.delete-on-termination": lambda e: str(e.attachment.delete_on_termination).lower() if e.attachment else None,
    "status": lambda e: e.status,
    "vpc-id": lambda e: e.vpc_id,
    "subnet-id": lambda e: e.subnet_id,
    "availability-zone": lambda e: e.availability_zone,
    "description": lambda e: e.description,
    "mac-address": lambda e: e.mac,
    "interface-type": lambda e: e.interface_type,
    "owner-id": lambda e: ACCOUNT_ID,
    "group-id": lambda e: [g for g, _ in e.groups],
    "private-ip-address": _addresses,
    "addresses.private-ip-address": _addresses,
    "ipv4-prefix": lambda e: [f"{ip_str(x)}/28" for x in e.prefixes],
    "source-dest-check": lambda e: str(e.source_dest_check).lower(),
}


@action("DescribeNetworkInterfaces", mutating=False)
def describe_network_interfaces(svc: Ec2Service, p: dict) -> dict:
    return filters.describe(p.get("NetworkInterfaceIds") or [], lambda i: lookup.eni(svc, i),
                            lambda: list(svc.state.enis.values()), p, ENI_FILTERS, "NetworkInterfaces",
                            lambda e: e.to_api(), tags=lambda e: e.tags)
