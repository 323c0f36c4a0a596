"""ipamd's EC2 port (upstream's pkg/awsutils): the calls ipamd makes, over any boto3-style client.

Two adapters serve it unchanged: a boto3 client with `endpoint_url` (the lab: real HTTP to the
emulator) and minieks.ec2.client.InProcessEc2Client (the planner and tests). Retries and waits
run on the ipamd's clock, so they cost nothing in virtual time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from minieks.clock import Clock

log = logging.getLogger("ipamd")

ENI_DESCRIPTION_PREFIX = "aws-K8S-"
TAG_INSTANCE_ID = "node.k8s.amazonaws.com/instance_id"
TAG_CREATED_AT = "node.k8s.amazonaws.com/createdAt"
TAG_NO_MANAGE = "node.k8s.amazonaws.com/no_manage"
TAG_CLUSTER_NAME = "cluster.k8s.amazonaws.com/name"
TAG_ENI_OWNER = "eks:eni:owner"
MAX_DEVICE_INDEX = 100
MAX_ENI_API_RETRIES = 12


def error_code(err: Exception) -> str | None:
    return err.response.get("Error", {}).get("Code") if isinstance(err, ClientError) else None


@dataclass(frozen=True)
class EniInfo:
    """What the node's metadata and DescribeNetworkInterfaces say about one attached ENI."""

    id: str
    mac: str
    device_number: int
    network_card: int
    primary_ip: str
    subnet_id: str
    subnet_cidr: str
    secondary_ips: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    interface_type: str = "interface"

    @property
    def is_primary(self) -> bool:
        return self.device_number == 0 and self.network_card == 0


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str
    instance_type: str
    availability_zone: str
    subnet_id: str
    vpc_id: str
    primary_ip: str
    security_groups: tuple[str, ...]
    vpc_cidrs: tuple[str, ...]


class AwsUtils:
    """The EC2 calls of ipamd, counted per API for the awscni_ec2api_* metrics."""

    def __init__(self, client, clock: Clock, instance_id: str, cluster_name: str = "",
                 additional_tags: tuple[tuple[str, str], ...] = (), unix_offset: float | None = None):
        self.client = client
        self.clock = clock
        self.unix_offset = time.time() - clock.now() if unix_offset is None else unix_offset
        self.instance_id = instance_id
        self.cluster_name = cluster_name
        self.additional_tags = dict(additional_tags)
        self.calls: dict[str, int] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.on_call: Callable[[str, str | None, float], None] | None = None

    def utc_now(self) -> datetime:
        """Wall time on this ipamd's clock (virtual in the planner), for createdAt tags."""
        return datetime.fromtimestamp(self.unix_offset + self.clock.now(), timezone.utc)

    # ------------------------------------------------------------------------------- plumbing
    def _call(self, api: str, **params):
        self.calls[api] = self.calls.get(api, 0) + 1
        start = self.clock.now()
        method = getattr(self.client, _snake(api))
        try:
            result = method(**params)
        except ClientError as err:
            code = error_code(err) or "Unknown"
            self.errors[(api, code)] = self.errors.get((api, code), 0) + 1
            if self.on_call:
                self.on_call(api, code, self.clock.now() - start)
            raise
        if self.on_call:
            self.on_call(api, None, self.clock.now() - start)
        return result

    def _retry(self, what: str, attempt: Callable[[], object], first_delay: float,
               done_on: tuple[str, ...] = ()) -> None:
        """Retry with exponential backoff (capped at 1 min), as awsutils does for detach/delete."""
        delay = first_delay
        for n in range(MAX_ENI_API_RETRIES):
            try:
                attempt()
                return
            except ClientError as err:
                if error_code(err) in done_on:
                    return
                if n == MAX_ENI_API_RETRIES - 1:
                    raise
                log.warning("%s failed (%s), retrying in %.1fs", what, err, delay)
                self.clock.sleep(delay)
                delay = min(delay * 2, 60.0)

    # ----------------------------------------------------------------------------- describing
    def instance_info(self) -> InstanceInfo:
        reservations = self._call("DescribeInstances", InstanceIds=[self.instance_id])["Reservations"]
        instance = reservations[0]["Instances"][0]
        vpc = self._call("DescribeVpcs", VpcIds=[instance["VpcId"]])["Vpcs"][0]
        cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])] or [vpc["CidrBlock"]]
        return InstanceInfo(instance["InstanceId"], instance["InstanceType"],
                            instance["Placement"]["AvailabilityZone"], instance["SubnetId"], instance["VpcId"],
                            instance["PrivateIpAddress"],
                            tuple(sorted(g["GroupId"] for g in instance.get("SecurityGroups", []))), tuple(cidrs))

    @staticmethod
    def _eni_info(e: dict, subnets: dict[str, str]) -> EniInfo:
        return EniInfo(
            id=e["NetworkInterfaceId"], mac=e["MacAddress"], device_number=e["Attachment"]["DeviceIndex"],
            network_card=e["Attachment"].get("NetworkCardIndex", 0), primary_ip=e["PrivateIpAddress"],
            subnet_id=e["SubnetId"], subnet_cidr=subnets.get(e["SubnetId"], ""),
            secondary_ips=tuple(a["PrivateIpAddress"] for a in e.get("PrivateIpAddresses", []) if not a["Primary"]),
            prefixes=tuple(p["Ipv4Prefix"] for p in e.get("Ipv4Prefixes", [])),
            tags={t["Key"]: t["Value"] for t in e.get("TagSet", [])},
            interface_type=e.get("InterfaceType", "interface"))

    def eni_addresses(self, eni_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(secondary IPs, prefixes) of one ENI as EC2 has them (the truth when IMDS disagrees)."""
        e = self._call("DescribeNetworkInterfaces", NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
        info = self._eni_info(dict(e, Attachment=e.get("Attachment") or {"DeviceIndex": -1}), {})
        return info.secondary_ips, info.prefixes

    def subnets_in_zone(self, vpc_id: str, zone: str) -> list[dict]:
        return self._call("DescribeSubnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                      {"Name": "availability-zone", "Values": [zone]}])["Subnets"]

    def instance_type_limits(self, instance_type: str) -> tuple[int, int]:
        """(ENIs on the default card, IPv4 per ENI) from DescribeInstanceTypes, for unknown types."""
        info = self._call("DescribeInstanceTypes", InstanceTypes=[instance_type])["InstanceTypes"][0]["NetworkInfo"]
        card = info.get("DefaultNetworkCardIndex", 0)
        cards = {c["NetworkCardIndex"]: c["MaximumNetworkInterfaces"] for c in info.get("NetworkCards", [])}
        return cards.get(card, info["MaximumNetworkInterfaces"]), info["Ipv4AddressesPerInterface"]

    # ------------------------------------------------------------------------------------ ENIs
    def eni_tags(self) -> dict[str, str]:
        tags = {TAG_INSTANCE_ID: self.instance_id}
        if self.cluster_name:
            tags[TAG_CLUSTER_NAME] = self.cluster_name
            tags[TAG_ENI_OWNER] = "amazon-vpc-cni"
        return tags

    def tag_eni(self, eni_id: str, current: dict[str, str]) -> None:
        """Add the CNI's tags an ENI lacks (nodeInit and reconcile do this for every managed ENI)."""
        missing = {k: v for k, v in self.eni_tags().items() if current.get(k) != v}
        if missing:
            self._call("CreateTags", Resources=[eni_id], Tags=[{"Key": k, "Value": v} for k, v in missing.items()])

    def alloc_eni(self, subnet_id: str, security_groups: tuple[str, ...], count: int, prefixes: bool,
                  card: int = 0) -> str:
        """CreateNetworkInterface with `count` IPs or prefixes, attach at the lowest free device,
        set DeleteOnTermination; an ENI that cannot be attached is deleted again."""
        tags = dict(self.additional_tags, **self.eni_tags())
        tags[TAG_CREATED_AT] = self.utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {"Description": ENI_DESCRIPTION_PREFIX + self.instance_id, "SubnetId": subnet_id,
                  "TagSpecifications": [{"ResourceType": "network-interface",
                                         "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]}
        if security_groups:
            params["Groups"] = sorted(security_groups)
        if count > 0:
            params["Ipv4PrefixCount" if prefixes else "SecondaryPrivateIpAddressCount"] = count
        eni_id = self._call("CreateNetworkInterface", **params)["NetworkInterface"]["NetworkInterfaceId"]
        log.info("Created a new ENI: %s", eni_id)
        try:
            device = self._free_device_index(card)
            attachment = self._call("AttachNetworkInterface", NetworkInterfaceId=eni_id, InstanceId=self.instance_id,
                                    DeviceIndex=device, NetworkCardIndex=card)["AttachmentId"]
        except ClientError:
            log.error("Failed to attach ENI %s; deleting it", eni_id)
            self._retry("DeleteNetworkInterface", lambda: self._call("DeleteNetworkInterface",
                                                                     NetworkInterfaceId=eni_id), 0.5,
                        done_on=("InvalidNetworkInterfaceID.NotFound",))
            raise
        try:
            self._call("ModifyNetworkInterfaceAttribute", NetworkInterfaceId=eni_id,
                       Attachment={"AttachmentId": attachment, "DeleteOnTermination": True})
        except ClientError:
            self.free_eni(eni_id)
            raise
        return eni_id

    def _free_device_index(self, card: int) -> int:
        instance = self._call("DescribeInstances", InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]
        used = {n["Attachment"]["DeviceIndex"] for n in instance.get("NetworkInterfaces", [])
                if n["Attachment"].get("NetworkCardIndex", 0) == card}
        for index in range(MAX_DEVICE_INDEX):
            if index not in used:
                return index
        raise RuntimeError("no free device index on the instance")

    def free_eni(self, eni_id: str) -> None:
        """Detach (retrying), wait 2 s, delete (retrying; already gone counts as done)."""
        found = self._call("DescribeNetworkInterfaces", NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
        attachment = found.get("Attachment", {}).get("AttachmentId")
        if attachment:
            self._retry("DetachNetworkInterface", lambda: self._call("DetachNetworkInterface",
                                                                     AttachmentId=attachment), 0.2,
                        done_on=("InvalidAttachmentID.NotFound",))
            self.clock.sleep(2.0)
        self._retry("DeleteNetworkInterface", lambda: self._call("DeleteNetworkInterface",
                                                                 NetworkInterfaceId=eni_id), 0.5,
                    done_on=("InvalidNetworkInterfaceID.NotFound",))
        log.info("Successfully freed ENI: %s", eni_id)

    # ------------------------------------------------------------------------------- addresses
    def alloc_ips(self, eni_id: str, count: int) -> list[str]:
        out = self._call("AssignPrivateIpAddresses", NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=count)
        return [a["PrivateIpAddress"] for a in out.get("AssignedPrivateIpAddresses", [])]

    def alloc_prefixes(self, eni_id: str, count: int) -> list[str]:
        out = self._call("AssignPrivateIpAddresses", NetworkInterfaceId=eni_id, Ipv4PrefixCount=count)
        return [p["Ipv4Prefix"] for p in out.get("AssignedIpv4Prefixes", [])]

    def dealloc_ips(self, eni_id: str, ips: list[str]) -> None:
        if ips:
            self._call("UnassignPrivateIpAddresses", NetworkInterfaceId=eni_id, PrivateIpAddresses=ips)

    def dealloc_prefixes(self, eni_id: str, prefixes: list[str]) -> None:
        if prefixes:
            self._call("UnassignPrivateIpAddresses", NetworkInterfaceId=eni_id, Ipv4Prefixes=prefixes)

    # --------------------------------------------------------------------------- leaked ENIs
    def leaked_enis(self, vpc_id: str) -> list[dict]:
        """Available ENIs this CNI created (tagged, `aws-K8S-` description) anywhere in the VPC."""
        filters = [{"Name": "tag-key", "Values": [TAG_INSTANCE_ID]}, {"Name": "status", "Values": ["available"]},
                   {"Name": "vpc-id", "Values": [vpc_id]}]
        if self.cluster_name:
            filters.append({"Name": f"tag:{TAG_CLUSTER_NAME}", "Values": [self.cluster_name]})
        found, token = [], None
        while True:
            page = self._call("DescribeNetworkInterfaces", Filters=filters, MaxResults=1000,
                              **({"NextToken": token} if token else {}))
            found += [e for e in page["NetworkInterfaces"]
                      if e.get("Description", "").startswith(ENI_DESCRIPTION_PREFIX)]
            token = page.get("NextToken")
            if not token:
                return found

    def set_tag(self, eni_id: str, key: str, value: str) -> None:
        self._call("CreateTags", Resources=[eni_id], Tags=[{"Key": key, "Value": value}])

    def delete_eni(self, eni_id: str) -> None:
        self._call("DeleteNetworkInterface", NetworkInterfaceId=eni_id)


def _snake(api: str) -> str:
    out = []
    for i, ch in enumerate(api):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
