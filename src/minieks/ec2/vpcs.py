"""VPCs, subnets and subnet CIDR reservations: the address ranges ENIs draw from."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from minieks.ec2 import filters, lookup
from minieks.ec2.address_space import EXPLICIT_RESERVATION, PREFIX_RESERVATION
from minieks.ec2.errors import Ec2Error, invalid
from minieks.ec2.model import ACCOUNT_ID, Subnet, SubnetCidrReservation, Vpc
from minieks.ec2.registry import action, require

if TYPE_CHECKING:
    from minieks.ec2.service import Ec2Service


def _network(cidr: str, parameter: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr)
    except ValueError:
        raise invalid(f"Value ({cidr}) for parameter {parameter} is invalid. This is not a valid CIDR block.") from None


@action("CreateVpc")
def create_vpc(svc: Ec2Service, p: dict) -> dict:
    network = _network(require(p, "CidrBlock"), "cidrBlock")
    if not 16 <= network.prefixlen <= 28:
        raise Ec2Error("InvalidVpc.Range", f"The CIDR '{network}' is invalid.")
    vpc = Vpc(svc.ids.new("vpc"), str(network), svc.ids.new("sg"), lookup.tags_for(p, "vpc"))
    svc.state.vpcs[vpc.id] = vpc
    svc.touch("vpc", vpc.id, vpc)
    svc.emit("vpc-created", vpc_id=vpc.id, cidr=vpc.cidr_block)
    return {"Vpc": vpc.to_api()}


VPC_FILTERS = {
    "vpc-id": lambda v: v.id,
    "cidr": lambda v: v.cidr_block,
    "cidr-block-association.cidr-block": lambda v: v.cidr_block,
    "state": lambda v: "available",
    "is-default": lambda v: "false",
}


@action("DescribeVpcs", mutating=False)
def describe_vpcs(svc: Ec2Service, p: dict) -> dict:
    return filters.describe(p.get("VpcIds") or [], lambda i: lookup.vpc(svc, i), lambda: list(svc.state.vpcs.values()),
                            p, VPC_FILTERS, "Vpcs", lambda v: v.to_api(), tags=lambda v: v.tags)


@action("CreateSubnet")
def create_subnet(svc: Ec2Service, p: dict) -> dict:
    vpc = lookup.vpc(svc, require(p, "VpcId"))
    network = _network(require(p, "CidrBlock"), "cidrBlock")
    if not 16 <= network.prefixlen <= 28:
        raise Ec2Error("InvalidSubnet.Range", f"The CIDR '{network}' is invalid.")
    if not network.subnet_of(ipaddress.IPv4Network(vpc.cidr_block)):
        raise Ec2Error("InvalidSubnet.Range", f"The CIDR '{network}' is invalid.")
    for other in svc.state.subnets.values():
        if other.vpc_id == vpc.id and network.overlaps(ipaddress.IPv4Network(other.cidr_block)):
            raise Ec2Error("InvalidSubnet.Conflict", f"The CIDR '{network}' conflicts with another subnet")
    zone = p.get("AvailabilityZone") or svc.zones()[0]
    if zone not in svc.zones():
        raise invalid(f"Value ({zone}) for parameter availabilityZone is invalid. Subnets can currently only "
                      f"be created in the following availability zones: {', '.join(svc.zones())}.")
    subnet = Subnet(svc.ids.new("subnet"), vpc.id, str(network), zone, svc.zone_id(zone),
                    svc.new_space(str(network)), tags=lookup.tags_for(p, "subnet"))
    svc.state.subnets[subnet.id] = subnet
    svc.touch("subnet", subnet.id, subnet)
    svc.emit("subnet-created", subnet_id=subnet.id, cidr=subnet.cidr_block, zone=zone, vpc_id=vpc.id)
    return {"Subnet": subnet.to_api()}


SUBNET_FILTERS = {
    "subnet-id": lambda s: s.id,
    "vpc-id": lambda s: s.vpc_id,
    "availability-zone": lambda s: s.availability_zone,
    "availability-zone-id": lambda s: s.availability_zone_id,
    "cidr-block": lambda s: s.cidr_block,
    "cidr": lambda s: s.cidr_block,
    "state": lambda s: "available",
    "available-ip-address-count": lambda s: str(s.space.available),
    "map-public-ip-on-launch": lambda s: str(s.map_public_ip_on_launch).lower(),
}


@action("DescribeSubnets", mutating=False)
def describe_subnets(svc: Ec2Service, p: dict) -> dict:
    return filters.describe(p.get("SubnetIds") or [], lambda i: lookup.subnet(svc, i),
                            lambda: list(svc.state.subnets.values()), p, SUBNET_FILTERS, "Subnets",
                            lambda s: s.to_api(), tags=lambda s: s.tags)


@action("ModifySubnetAttribute")
def modify_subnet_attribute(svc: Ec2Service, p: dict) -> dict:
    subnet = lookup.subnet(svc, require(p, "SubnetId"))
    if "MapPublicIpOnLaunch" in p:
        subnet.map_public_ip_on_launch = bool(p["MapPublicIpOnLaunch"].get("Value"))
    svc.touch("subnet", subnet.id, subnet)
    return {}


RESERVATION_KINDS = {"prefix": PREFIX_RESERVATION, "explicit": EXPLICIT_RESERVATION}


@action("CreateSubnetCidrReservation")
def create_subnet_cidr_reservation(svc: Ec2Service, p: dict) -> dict:
    subnet = lookup.subnet(svc, require(p, "SubnetId"))
    network = _network(require(p, "Cidr"), "cidr")
    kind = require(p, "ReservationType")
    if kind not in RESERVATION_KINDS:
        raise invalid(f"Value ({kind}) for parameter reservationType is invalid. Valid values: prefix, explicit")
    if not network.subnet_of(ipaddress.IPv4Network(subnet.cidr_block)):
        raise invalid(f"The CIDR {network} is not within the subnet's CIDR {subnet.cidr_block}")
    subnet.space.reserve(str(network), RESERVATION_KINDS[kind])
    reservation = SubnetCidrReservation(svc.ids.new("scr"), subnet.id, str(network), kind,
                                        p.get("Description", ""), lookup.tags_for(p, "subnet-cidr-reservation"))
    subnet.reservations[reservation.id] = reservation
    svc.touch("subnet", subnet.id, subnet)
    return {"SubnetCidrReservation": reservation.to_api()}


RESERVATION_FILTERS = {
    "reservationType": lambda r: r.kind,
    "subnet-id": lambda r: r.subnet_id,
    "subnet-cidr-reservation-id": lambda r: r.id,
    "owner-id": lambda r: ACCOUNT_ID,
}


@action("GetSubnetCidrReservations", mutating=False)
def get_subnet_cidr_reservations(svc: Ec2Service, p: dict) -> dict:
    subnet = lookup.subnet(svc, require(p, "SubnetId"))
    found = filters.apply(list(subnet.reservations.values()), p.get("Filters"), RESERVATION_FILTERS,
                          tags=lambda r: r.tags)
    page, token = filters.paginate(found, p)
    out = {"SubnetIpv4CidrReservations": [r.to_api() for r in page], "SubnetIpv6CidrReservations": []}
    if token:
        out["NextToken"] = token
    return out


@action("DeleteSubnetCidrReservation")
def delete_subnet_cidr_reservation(svc: Ec2Service, p: dict) -> dict:
    reservation_id = require(p, "SubnetCidrReservationId")
    for subnet in svc.state.subnets.values():
        reservation = subnet.reservations.pop(reservation_id, None)
        if reservation:
            subnet.space.unreserve(reservation.cidr)
            svc.touch("subnet", subnet.id, subnet)
            return {"DeletedSubnetCidrReservation": reservation.to_api()}
    raise Ec2Error("InvalidSubnetCidrReservationID.NotFound",
                   f"The subnet CIDR reservation ID '{reservation_id}' does not exist")


@action("DescribeAvailabilityZones", mutating=False)
def describe_availability_zones(svc: Ec2Service, p: dict) -> dict:
    zones = [{"ZoneName": z, "ZoneId": svc.zone_id(z), "State": "available", "RegionName": svc.region,
              "ZoneType": "availability-zone", "OptInStatus": "opt-in-not-required"} for z in svc.zones()]
    readers = {"zone-name": lambda z: z["ZoneName"], "zone-id": lambda z: z["ZoneId"],
               "state": lambda z: z["State"], "region-name": lambda z: z["RegionName"]}
    return {"AvailabilityZones": filters.apply(zones, p.get("Filters"), readers)}
