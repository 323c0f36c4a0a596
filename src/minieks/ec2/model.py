"""The EC2 resources ipamd can observe, and their shapes in EC2's API.

Plain dataclasses: VPCs, subnets (each with its AddressSpace), instances of a known instance
type, ENIs with their attachment, addresses and /28 prefixes, and subnet CIDR reservations.
`to_api()` renders each as the dict boto3 returns, so both front ends share one rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from minieks.aws.instance_types import InstanceType
from minieks.ec2.address_space import AddressSpace, ip_str

ACCOUNT_ID = "123456789012"

INSTANCE_STATES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
                   "stopping": 64, "stopped": 80}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def dns_name(address: str, region: str) -> str:
    return f"ip-{address.replace('.', '-')}.{region}.compute.internal"


@dataclass
class Vpc:
    id: str
    cidr_block: str
    default_security_group: str
    tags: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict:
        return {
            "CidrBlock": self.cidr_block,
            "DhcpOptionsId": "dopt-0default",
            "State": "available",
            "VpcId": self.id,
            "OwnerId": ACCOUNT_ID,
            "InstanceTenancy": "default",
            "CidrBlockAssociationSet": [{
                "AssociationId": self.id.replace("vpc-", "vpc-cidr-assoc-"),
                "CidrBlock": self.cidr_block,
                "CidrBlockState": {"State": "associated"},
            }],
            "IsDefault": False,
            "Tags": tag_list(self.tags),
        }


@dataclass
class SubnetCidrReservation:
    id: str
    subnet_id: str
    cidr: str
    kind: str                      # "prefix" or "explicit"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict:
        return {
            "SubnetCidrReservationId": self.id,
            "SubnetId": self.subnet_id,
            "Cidr": self.cidr,
            "ReservationType": self.kind,
            "OwnerId": ACCOUNT_ID,
            "Description": self.description,
            "Tags": tag_list(self.tags),
        }


@dataclass
class Subnet:
    id: str
    vpc_id: str
    cidr_block: str
    availability_zone: str
    availability_zone_id: str
    space: AddressSpace
    map_public_ip_on_launch: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    reservations: dict[str, SubnetCidrReservation] = field(default_factory=dict)

    def to_api(self) -> dict:
        return {
            "AvailabilityZone": self.availability_zone,
            "AvailabilityZoneId": self.availability_zone_id,
            "AvailableIpAddressCount": self.space.available,
            "CidrBlock": self.cidr_block,
            "DefaultForAz": False,
            "MapPublicIpOnLaunch": self.map_public_ip_on_launch,
            "State": "available",
            "SubnetId": self.id,
            "VpcId": self.vpc_id,
            "OwnerId": ACCOUNT_ID,
            "AssignIpv6AddressOnCreation": False,
            "Ipv6CidrBlockAssociationSet": [],
            "SubnetArn": f"arn:aws:ec2:{self.availability_zone[:-1]}:{ACCOUNT_ID}:subnet/{self.id}",
            "Tags": tag_list(self.tags),
        }


@dataclass
class Attachment:
    id: str
    instance_id: str
    device_index: int
    network_card_index: int
    attach_time: datetime
    delete_on_termination: bool = False
    status: str = "attached"

    def to_api(self) -> dict:
        return {
            "AttachTime": self.attach_time,
            "AttachmentId": self.id,
            "DeleteOnTermination": self.delete_on_termination,
            "DeviceIndex": self.device_index,
            "NetworkCardIndex": self.network_card_index,
            "InstanceId": self.instance_id,
            "InstanceOwnerId": ACCOUNT_ID,
            "Status": self.status,
        }


@dataclass
class NetworkInterface:
    id: str
    subnet_id: str
    vpc_id: str
    availability_zone: str
    mac: str
    primary_ip: int
    region: str
    description: str = ""
    secondary_ips: list[int] = field(default_factory=list)
    prefixes: list[int] = field(default_factory=list)
    groups: list[tuple[str, str]] = field(default_factory=list)   # (id, name)
    tags: dict[str, str] = field(default_factory=dict)
    attachment: Attachment | None = None
    interface_type: str = "interface"
    source_dest_check: bool = True
    public_ip: str | None = None

    @property
    def status(self) -> str:
        return "in-use" if self.attachment else "available"

    @property
    def slots_used(self) -> int:
        """Address slots taken: the primary, each secondary address, each prefix."""
        return 1 + len(self.secondary_ips) + len(self.prefixes)

    def to_api(self) -> dict:
        primary = ip_str(self.primary_ip)
        addresses = [{"Primary": True, "PrivateIpAddress": primary,
                      "PrivateDnsName": dns_name(primary, self.region)}]
        if self.public_ip:
            addresses[0]["Association"] = self._association()
        for ip in self.secondary_ips:
            text = ip_str(ip)
            addresses.append({"Primary": False, "PrivateIpAddress": text,
                              "PrivateDnsName": dns_name(text, self.region)})
        out = {
            "AvailabilityZone": self.availability_zone,
            "Description": self.description,
            "Groups": [{"GroupId": gid, "GroupName": name} for gid, name in self.groups],
            "InterfaceType": self.interface_type,
            "Ipv6Addresses": [],
            "MacAddress": self.mac,
            "NetworkInterfaceId": self.id,
            "OwnerId": ACCOUNT_ID,
            "PrivateDnsName": dns_name(primary, self.region),
            "PrivateIpAddress": primary,
            "PrivateIpAddresses": addresses,
            "Ipv4Prefixes": [{"Ipv4Prefix": f"{ip_str(p)}/28"} for p in self.prefixes],
            "RequesterManaged": False,
            "SourceDestCheck": self.source_dest_check,
            "Status": self.status,
            "SubnetId": self.subnet_id,
            "TagSet": tag_list(self.tags),
            "VpcId": self.vpc_id,
        }
        if self.attachment:
            out["Attachment"] = self.attachment.to_api()
        if self.public_ip:
            out["Association"] = self._association()
        return out

    def _association(self) -> dict:
        return {"IpOwnerId": "amazon", "PublicIp": self.public_ip,
                "PublicDnsName": f"ec2-{self.public_ip.replace('.', '-')}.{self.region}.compute.amazonaws.com"}


@dataclass
class Instance:
    id: str
    instance_type: InstanceType
    subnet_id: str
    vpc_id: str
    availability_zone: str
    image_id: str
    reservation_id: str
    primary_eni_id: str
    launch_time: datetime
    region: str
    state: str = "running"
    key_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    ami_launch_index: int = 0

    def to_api(self, enis: list[NetworkInterface]) -> dict:
        primary = next(e for e in enis if e.id == self.primary_eni_id) if self.state != "terminated" else None
        out = {
            "AmiLaunchIndex": self.ami_launch_index,
            "ImageId": self.image_id,
            "InstanceId": self.id,
            "InstanceType": self.instance_type.name,
            "LaunchTime": self.launch_time,
            "Placement": {"AvailabilityZone": self.availability_zone, "GroupName": "", "Tenancy": "default"},
            "State": {"Code": INSTANCE_STATES[self.state], "Name": self.state},
            "Architecture": "x86_64",
            "Hypervisor": "xen",                # what EC2 reports for Nitro types too
            "RootDeviceName": "/dev/xvda",
            "RootDeviceType": "ebs",
            "VirtualizationType": "hvm",
            "Tags": tag_list(self.tags),
            "NetworkInterfaces": [],
        }
        if self.key_name:
            out["KeyName"] = self.key_name
        if primary is None:
            return out
        primary_ip = ip_str(primary.primary_ip)
        out.update({
            "PrivateIpAddress": primary_ip,
            "PrivateDnsName": dns_name(primary_ip, self.region),
            "SubnetId": self.subnet_id,
            "VpcId": self.vpc_id,
            "SourceDestCheck": primary.source_dest_check,
            "SecurityGroups": [{"GroupId": gid, "GroupName": name} for gid, name in primary.groups],
        })
        if primary.public_ip:
            out["PublicIpAddress"] = primary.public_ip
            out["PublicDnsName"] = primary._association()["PublicDnsName"]
        for eni in sorted(enis, key=lambda e: (e.attachment.network_card_index, e.attachment.device_index)):
            api = eni.to_api()
            api.pop("AvailabilityZone")
            api.pop("RequesterManaged")
            api.pop("TagSet")
            api["Attachment"].pop("InstanceId")
            api["Attachment"].pop("InstanceOwnerId")
            out["NetworkInterfaces"].append(api)
        return out


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
