"""Finding resources by id with EC2's NotFound errors, and tag specifications on create."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minieks.ec2.errors import Ec2Error, invalid

if TYPE_CHECKING:
    from minieks.ec2.model import Instance, NetworkInterface, Subnet, Vpc
    from minieks.ec2.service import Ec2Service


def vpc(svc: Ec2Service, vpc_id: str) -> Vpc:
    try:
        return svc.state.vpcs[vpc_id]
    except KeyError:
        raise Ec2Error("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist") from None


def subnet(svc: Ec2Service, subnet_id: str) -> Subnet:
    try:
        return svc.state.subnets[subnet_id]
    except KeyError:
        raise Ec2Error("InvalidSubnetID.NotFound", f"The subnet ID '{subnet_id}' does not exist") from None


def instance(svc: Ec2Service, instance_id: str) -> Instance:
    try:
        return svc.state.instances[instance_id]
    except KeyError:
        if not instance_id.startswith("i-"):
            raise Ec2Error("InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"') from None
        raise Ec2Error("InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist") from None


def eni(svc: Ec2Service, eni_id: str) -> NetworkInterface:
    try:
        return svc.state.enis[eni_id]
    except KeyError:
        if not eni_id.startswith("eni-"):
            raise Ec2Error("InvalidNetworkInterfaceID.Malformed",
                           f"Invalid id: \"{eni_id}\" (expecting \"eni-...\")") from None
        raise Ec2Error("InvalidNetworkInterfaceID.NotFound",
                       f"The networkInterface ID '{eni_id}' does not exist") from None


def tags_for(params: dict, resource_type: str) -> dict[str, str]:
    """Tags from TagSpecifications for this resource type (other types are an error, as in EC2)."""
    out: dict[str, str] = {}
    for spec in params.get("TagSpecifications") or []:
        kind = spec.get("ResourceType")
        if kind != resource_type:
            raise invalid(f"'{kind}' is not a valid taggable resource type for this operation.")
        for tag in spec.get("Tags") or []:
            out[tag["Key"]] = tag.get("Value", "")
    return out
