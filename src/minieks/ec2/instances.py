"""Instances and instance types: RunInstances gives each instance its primary ENI at device 0
(delete on termination), TerminateInstances deletes the ENIs so marked and detaches the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minieks.aws import instance_types
from minieks.ec2 import filters, lookup
from minieks.ec2.errors import Ec2Error, invalid
from minieks.ec2.model import ACCOUNT_ID, INSTANCE_STATES, Instance, now_utc
from minieks.ec2.network_interfaces import attach, attached_enis, delete, detach, new_eni
from minieks.ec2.registry import action, require

if TYPE_CHECKING:
    from minieks.ec2.service import Ec2Service


def _instance_type(name: str) -> instance_types.InstanceType:
    try:
        return instance_types.get(name)
    except instance_types.UnknownInstanceType:
        raise invalid(f"Invalid value '{name}' for InstanceType.") from None


@action("RunInstances")
def run_instances(svc: Ec2Service, p: dict) -> dict:
    itype = _instance_type(p.get("InstanceType") or "m1.small")
    image_id = require(p, "ImageId")
    low, high = require(p, "MinCount"), require(p, "MaxCount")
    if not 1 <= low <= high:
        raise invalid("MinCount and MaxCount must be at least 1, and MinCount no more than MaxCount")
    nic_spec = (p.get("NetworkInterfaces") or [{}])[0]
    subnet_id = p.get("SubnetId") or nic_spec.get("SubnetId")
    if not subnet_id:
        raise Ec2Error("MissingInput", "No subnets found for the default VPC. Please specify a subnet.")
    subnet = lookup.subnet(svc, subnet_id)
    if p.get("PrivateIpAddress") and high > 1:
        raise invalid("A private IP address can only be specified when launching a single instance")
    if high > subnet.space.available:
        raise Ec2Error("InsufficientFreeAddressesInSubnet",
                       "The specified subnet does not have enough free addresses to satisfy the request.")
    all_tags = p.get("TagSpecifications") or []
    instance_tags = lookup.tags_for({"TagSpecifications": [t for t in all_tags if t.get("ResourceType") == "instance"]},
                                    "instance")
    eni_tags = lookup.tags_for({"TagSpecifications": [t for t in all_tags
                                                      if t.get("ResourceType") == "network-interface"]},
                               "network-interface")
    public = nic_spec.get("AssociatePublicIpAddress", subnet.map_public_ip_on_launch)
    reservation_id = svc.ids.new("r")
    launched: list[Instance] = []
    made: list = []                          # ENIs this call created, attached or not yet
    try:
        for index in range(high):
            eni_params = {"PrivateIpAddress": p.get("PrivateIpAddress") or nic_spec.get("PrivateIpAddress"),
                          "Groups": p.get("SecurityGroupIds") or nic_spec.get("Groups"),
                          "Description": nic_spec.get("Description", ""),
                          "SecondaryPrivateIpAddressCount": nic_spec.get("SecondaryPrivateIpAddressCount")}
            eni = new_eni(svc, subnet, eni_params, dict(eni_tags))
            made.append(eni)
            if public:
                eni.public_ip = svc.allocate_public_ip()
            instance = Instance(svc.ids.new("i"), itype, subnet.id, subnet.vpc_id, subnet.availability_zone,
                                image_id, reservation_id, eni.id, now_utc(), svc.region,
                                key_name=p.get("KeyName"), tags=dict(instance_tags), ami_launch_index=index)
            svc.state.instances[instance.id] = instance
            attach(svc, eni, instance.id, 0, 0, delete_on_termination=nic_spec.get("DeleteOnTermination", True))
            svc.touch("instance", instance.id, instance)
            svc.emit("instance-launched", instance_id=instance.id, subnet_id=subnet.id, eni_id=eni.id,
                     instance_type=itype.name)
            launched.append(instance)
    except Ec2Error:
        _undo_launch(svc, made, launched)    # all or nothing, as EC2: nothing of a refused request stays
        raise
    return {"Groups": [], "OwnerId": ACCOUNT_ID, "ReservationId": reservation_id,
            "Instances": [i.to_api(attached_enis(svc, i.id)) for i in launched]}


def _undo_launch(svc: Ec2Service, enis: list, launched: list[Instance]) -> None:
    """Take back what a RunInstances that failed part-way had made: its ENIs (with their addresses and
    public IPs) and instances. The service discards their persistence and events with the error."""
    for eni in enis:
        if eni.attachment is not None:
            detach(svc, eni)
        delete(svc, eni)
    for instance in launched:
        del svc.state.instances[instance.id]


INSTANCE_FILTERS = {
    "instance-id": lambda i: i.id,
    "instance-type": lambda i: i.instance_type.name,
    "instance-state-name": lambda i: i.state,
    "instance-state-code": lambda i: str(INSTANCE_STATES[i.state]),
    "subnet-id": lambda i: i.subnet_id,
    "vpc-id": lambda i: i.vpc_id,
    "availability-zone": lambda i: i.availability_zone,
    "image-id": lambda i: i.image_id,
    "reservation-id": lambda i: i.reservation_id,
    "key-name": lambda i: i.key_name,
}


@action("DescribeInstances", mutating=False)
def describe_instances(svc: Ec2Service, p: dict) -> dict:
    ids = p.get("InstanceIds") or []
    found = [lookup.instance(svc, i) for i in ids] if ids else list(svc.state.instances.values())
    readers = dict(INSTANCE_FILTERS)
    readers["private-ip-address"] = lambda i: _primary_ip(svc, i)
    readers["network-interface.network-interface-id"] = lambda i: [e.id for e in attached_enis(svc, i.id)]
    found = filters.apply(found, p.get("Filters"), readers, tags=lambda i: i.tags)
    page, token = filters.paginate(found, p)
    reservations: dict[str, dict] = {}
    for instance in page:
        entry = reservations.setdefault(instance.reservation_id, {
            "Groups": [], "OwnerId": ACCOUNT_ID, "ReservationId": instance.reservation_id, "Instances": []})
        entry["Instances"].append(instance.to_api(attached_enis(svc, instance.id)))
    out = {"Reservations": list(reservations.values())}
    if token:
        out["NextToken"] = token
    return out


def _primary_ip(svc: Ec2Service, instance: Instance) -> str | None:
    from minieks.ec2.address_space import ip_str
    eni = svc.state.enis.get(instance.primary_eni_id)
    return ip_str(eni.primary_ip) if eni else None


@action("TerminateInstances")
def terminate_instances(svc: Ec2Service, p: dict) -> dict:
    targets = [lookup.instance(svc, i) for i in require(p, "InstanceIds")]
    changes = []
    for instance in targets:
        previous = instance.state
        if previous != "terminated":
            for eni in attached_enis(svc, instance.id):
                delete_it = eni.attachment.delete_on_termination
                detach(svc, eni)
                if delete_it:
                    delete(svc, eni)
            instance.state = "terminated"
            svc.touch("instance", instance.id, instance)
            svc.emit("instance-terminated", instance_id=instance.id)
        changes.append({"InstanceId": instance.id,
                        "CurrentState": {"Code": INSTANCE_STATES["shutting-down"] if previous != "terminated"
                                         else 48, "Name": "shutting-down" if previous != "terminated" else "terminated"},
                        "PreviousState": {"Code": INSTANCE_STATES[previous], "Name": previous}})
    return {"TerminatingInstances": changes}


def instance_type_info(t: instance_types.InstanceType) -> dict:
    """DescribeInstanceTypes' record for `t`, from the shipped table."""
    network = {
        "NetworkPerformance": "Up to 5 Gigabit",
        "MaximumNetworkInterfaces": t.total_enis,
        "MaximumNetworkCards": t.network_cards,
        "DefaultNetworkCardIndex": t.default_network_card_index,
        "NetworkCards": [{"NetworkCardIndex": i, "MaximumNetworkInterfaces": n}
                         for i, n in enumerate(t.max_enis_per_network_card)],
        "Ipv4AddressesPerInterface": t.ipv4_per_eni,
        "Ipv6AddressesPerInterface": t.ipv6_per_eni or 0,
        "Ipv6Supported": bool(t.ipv6_per_eni),
        "EnaSupport": "required" if t.hypervisor == "nitro" else "unsupported",
        "EfaSupported": False,
        "EncryptionInTransitSupported": t.hypervisor == "nitro",
    }
    out = {"InstanceType": t.name, "CurrentGeneration": t.hypervisor == "nitro", "BareMetal": t.bare_metal,
           "NetworkInfo": network}
    if t.hypervisor in ("nitro", "xen"):
        out["Hypervisor"] = t.hypervisor
    if t.vcpus is not None:
        out["VCpuInfo"] = {"DefaultVCpus": t.vcpus}
    if t.memory_mib is not None:
        out["MemoryInfo"] = {"SizeInMiB": t.memory_mib}
    return out


TYPE_FILTERS = {
    "instance-type": lambda t: t.name,
    "hypervisor": lambda t: t.hypervisor,
    "bare-metal": lambda t: str(t.bare_metal).lower(),
    "vcpu-info.default-vcpus": lambda t: str(t.vcpus) if t.vcpus is not None else None,
    "network-info.maximum-network-interfaces": lambda t: str(t.total_enis),
    "network-info.ipv4-addresses-per-interface": lambda t: str(t.ipv4_per_eni),
    "current-generation": lambda t: str(t.hypervisor == "nitro").lower(),
}


@action("DescribeInstanceTypes", mutating=False)
def describe_instance_types(svc: Ec2Service, p: dict) -> dict:
    names = p.get("InstanceTypes") or []
    found = [_instance_type(n) for n in names] if names else list(instance_types.catalog().values())
    found = filters.apply(found, p.get("Filters"), TYPE_FILTERS)
    page, token = filters.paginate(found, p, limits=(5, 100), default=100)
    out = {"InstanceTypes": [instance_type_info(t) for t in page]}
    if token:
        out["NextToken"] = token
    return out
