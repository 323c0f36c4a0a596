"""A node with a real ipamd context on a virtual clock and an in-process EC2, for pool tests."""

from __future__ import annotations

from minieks.clock import VirtualClock
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.service import Ec2Service
from minieks.ipamd.awsutils import AwsUtils
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.context import IpamContext
from minieks.ipamd.metadata import InProcessMetadata
from minieks.ipamd.ports import StaticCluster


class Node:
    def __init__(self, instance_type: str = "m5.xlarge", env: dict | None = None, max_pods: int = 110,
                 subnet_cidr: str = "10.0.0.0/20", cluster: StaticCluster | None = None,
                 extra_subnets: tuple[tuple[str, dict], ...] = ()):
        self.clock = VirtualClock()
        self.ec2 = Ec2Service(seed=3, placement="lowest", clock=self.clock)
        self.client = InProcessEc2Client(self.ec2)
        self.vpc = self.client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.client.create_subnet(VpcId=self.vpc, CidrBlock=subnet_cidr,
                                                AvailabilityZone="ap-northeast-2a")["Subnet"]["SubnetId"]
        self.extra_subnets = []
        for cidr, tags in extra_subnets:
            sid = self.client.create_subnet(VpcId=self.vpc, CidrBlock=cidr, AvailabilityZone="ap-northeast-2a",
                                            TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                                {"Key": k, "Value": v} for k, v in tags.items()]}])["Subnet"]["SubnetId"]
            self.extra_subnets.append(sid)
        run = self.client.run_instances(ImageId="ami-1", InstanceType=instance_type, MinCount=1, MaxCount=1,
                                        SubnetId=self.subnet)
        self.instance_id = run["Instances"][0]["InstanceId"]
        self.env = {"ENABLE_IPv4": "true", **(env or {})}
        self.cluster = cluster or StaticCluster(max_pods)
        self.ctx = self.new_context()

    def new_context(self, client=None, backing_file: str | None = None) -> IpamContext:
        env = dict(self.env)
        if backing_file:
            env["AWS_VPC_K8S_CNI_BACKING_STORE"] = backing_file
        ctx = IpamContext(IpamdConfig.from_env(env),
                          AwsUtils(client or self.client, self.clock, self.instance_id, unix_offset=0),
                          InProcessMetadata(self.ec2, self.instance_id), self.clock, cluster=self.cluster,
                          persist_checkpoint=backing_file is not None, unix_offset=0)
        return ctx

    def eni_view(self) -> dict[str, tuple[list[str], list[str]]]:
        """EC2's truth: attached ENI → (secondary IPs, prefixes)."""
        out = {}
        found = self.client.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [self.instance_id]}])["NetworkInterfaces"]
        for e in found:
            out[e["NetworkInterfaceId"]] = (sorted(a["PrivateIpAddress"] for a in e["PrivateIpAddresses"]
                                                   if not a["Primary"]),
                                            sorted(p["Ipv4Prefix"] for p in e["Ipv4Prefixes"]))
        return out

    def datastore_view(self, ctx: IpamContext | None = None) -> dict[str, tuple[list[str], list[str]]]:
        ds = (ctx or self.ctx).ds
        return {e.id: (sorted(c[:-3] for c in ds.eni_cidrs(e.id, prefixes=False)),
                       sorted(ds.eni_cidrs(e.id, prefixes=True))) for e in ds.enis()}

    def cycles(self, n: int, ctx: IpamContext | None = None) -> None:
        for _ in range(n):
            (ctx or self.ctx).run_cycle()


class Recorder:
    """Records AwsUtils' pool-level calls (AllocENI, AssignPrivateIpAddresses) on a context."""

    def __init__(self, ctx: IpamContext):
        self.calls: list[dict] = []
        aws = ctx.aws
        original_alloc, original_ips, original_prefixes = aws.alloc_eni, aws.alloc_ips, aws.alloc_prefixes

        def alloc_eni(subnet, groups, count, prefixes, card=0):
            self.calls.append({"api": "AllocENI", "subnet": subnet, "security_groups": list(groups),
                               "count": count, "network_card": card})
            return original_alloc(subnet, groups, count, prefixes, card)

        def alloc_ips(eni, count):
            self.calls.append({"api": "AssignPrivateIpAddresses", "eni": eni, "count": count})
            return original_ips(eni, count)

        def alloc_prefixes(eni, count):
            self.calls.append({"api": "AssignPrivateIpAddresses(Ipv4PrefixCount)", "eni": eni, "count": count})
            return original_prefixes(eni, count)

        aws.alloc_eni, aws.alloc_ips, aws.alloc_prefixes = alloc_eni, alloc_ips, alloc_prefixes
