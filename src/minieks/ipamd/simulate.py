"""`minieks ipamd simulate`: one node's warm pool, in virtual time, against the in-process EC2.

The real ipamd code (IpamContext, the same decisions and EC2 calls the lab makes) runs on a
VirtualClock with instant EC2 latency: the pool settles, N pods arrive one at a time with the pool
settling between them, then it settles again, and the node's state is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minieks.aws import instance_types
from minieks.aws.max_pods import HOST_NETWORK_PODS, MaxPodsOptions, calculate
from minieks.clock import VirtualClock
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.service import Ec2Service
from minieks.ipamd.awsutils import AwsUtils
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.context import IpamContext
from minieks.ipamd.datastore import NoAvailableIPError
from minieks.ipamd.metadata import InProcessMetadata
from minieks.ipamd.eni import IPAMKey, IPAMMetadata
from minieks.ipamd.ports import StaticCluster

STEADY_CYCLES = 15           # 75 s without a change: past the 30 s release spacing and 60 s ENI lifetime
MAX_SETTLE_CYCLES = 400
SUBNET = "10.0.0.0/18"


@dataclass
class SimulationResult:
    instance_type: str
    mode: str
    max_pods: int
    enis: int
    secondary_ips: int
    prefixes: int
    unused_ips: int
    per_eni: list[int]
    pods: int
    pods_failed: int
    pods_pending: int
    ec2_calls: dict[str, int]
    virtual_seconds: float
    eni_ids: list[str] = field(default_factory=list)
    eni_devices: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"instance_type": self.instance_type, "mode": self.mode, "max_pods": self.max_pods,
                "enis": self.enis, "secondary_ips": self.secondary_ips, "prefixes": self.prefixes,
                "unused_ips": self.unused_ips, "per_eni": self.per_eni, "pods": self.pods,
                "pods_failed": self.pods_failed, "pods_pending": self.pods_pending, "ec2_calls": self.ec2_calls,
                "virtual_seconds": round(self.virtual_seconds, 1)}


def env_for(warm_eni_target: int | None = None, warm_ip_target: int | None = None,
            minimum_ip_target: int | None = None, warm_prefix_target: int | None = None,
            prefix_delegation: bool = False) -> dict[str, str]:
    """The aws-node environment the options stand for (the manifest's defaults otherwise)."""
    env = {"ENABLE_IPv4": "true", "ENABLE_IPv6": "false",
           "ENABLE_PREFIX_DELEGATION": "true" if prefix_delegation else "false",
           "WARM_PREFIX_TARGET": "1", "WARM_ENI_TARGET": "1"}
    for name, value in (("WARM_ENI_TARGET", warm_eni_target), ("WARM_IP_TARGET", warm_ip_target),
                        ("MINIMUM_IP_TARGET", minimum_ip_target), ("WARM_PREFIX_TARGET", warm_prefix_target)):
        if value is not None:
            env[name] = str(value)
    return env


def default_max_pods(instance_type: str, prefix_delegation: bool) -> int:
    """The EKS AMI calculator's value for the mode (what the node's kubelet would be given)."""
    return calculate(instance_types.get(instance_type), MaxPodsOptions(prefix_delegation=prefix_delegation)).max_pods


class NodeSimulation:
    """One instance in a fresh in-process EC2, with its ipamd on a virtual clock."""

    def __init__(self, instance_type: str, env: dict[str, str], max_pods: int | None = None, seed: int = 0):
        instance_types.get(instance_type)          # unknown types fail here, with suggestions
        self.clock = VirtualClock()
        self.ec2 = Ec2Service(seed=seed, placement="lowest", clock=self.clock)
        client = InProcessEc2Client(self.ec2)
        vpc = client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = client.create_subnet(VpcId=vpc, CidrBlock=SUBNET, AvailabilityZone="ap-northeast-2a")["Subnet"]
        run = client.run_instances(ImageId="ami-0minieks", InstanceType=instance_type, MinCount=1, MaxCount=1,
                                   SubnetId=subnet["SubnetId"])
        self.instance_id = run["Instances"][0]["InstanceId"]
        config = IpamdConfig.from_env(env)
        self.ipamd = IpamContext(config, AwsUtils(client, self.clock, self.instance_id, unix_offset=0),
                                 InProcessMetadata(self.ec2, self.instance_id), self.clock,
                                 cluster=StaticCluster(max_pods), persist_checkpoint=False, unix_offset=0)
        self.baseline_calls = dict(self.ec2.calls)
        self.ipamd.node_init()
        self.pods: list[IPAMKey] = []
        self.failed = 0
        self.pending = 0

    def signature(self) -> tuple:
        return tuple((e.id, tuple(sorted(e.ipv4_cidrs))) for e in self.ipamd.ds.enis())

    def settle(self) -> None:
        """Run pool cycles until nothing has changed for STEADY_CYCLES cycles."""
        last, quiet = self.signature(), 0
        for _ in range(MAX_SETTLE_CYCLES):
            self.ipamd.run_cycle()
            now = self.signature()
            quiet = quiet + 1 if now == last else 0
            last = now
            if quiet >= STEADY_CYCLES:
                return

    def add_pod(self) -> bool:
        """One pod sandbox, as the CNI ADD would ask for it; a failure waits for the pool once.

        Max pods counts the two host-network pods (aws-node, kube-proxy): past max pods − 2 the
        scheduler places no more pods, so they stay Pending and never reach ipamd."""
        if len(self.pods) + self.failed >= self.ipamd.max_pods - HOST_NETWORK_PODS:
            self.pending += 1
            return False
        n = len(self.pods) + self.failed
        key = IPAMKey("aws-cni", f"sandbox-{n:05d}", "eth0")
        meta = IPAMMetadata("default", f"pod-{n}", 1)
        for attempt in range(2):
            try:
                self.ipamd.ds.assign_pod_ipv4_address(key, meta)
                self.pods.append(key)
                return True
            except NoAvailableIPError:
                if attempt == 0:
                    self.settle()
        self.failed += 1
        return False

    def result(self) -> SimulationResult:
        ds = self.ipamd.ds
        enis = ds.enis()
        pd = self.ipamd.pd
        prefixes = sum(1 for e in enis for c in e.ipv4_cidrs.values() if c.is_prefix)
        stats = ds.ip_stats()
        per_eni = [sum(1 for c in e.ipv4_cidrs.values() if c.is_prefix == pd) for e in enis]
        calls = {k: v - self.baseline_calls.get(k, 0) for k, v in self.ec2.calls.items()
                 if v - self.baseline_calls.get(k, 0) > 0}
        return SimulationResult(
            instance_type=self.ipamd.instance.instance_type, mode="prefix-delegation" if pd else "secondary-ip",
            max_pods=self.ipamd.max_pods, enis=len(enis), secondary_ips=stats.total_ips, prefixes=prefixes,
            unused_ips=stats.total_ips - stats.assigned_ips, per_eni=per_eni, pods=len(self.pods),
            pods_failed=self.failed, pods_pending=self.pending, ec2_calls=dict(sorted(calls.items())), virtual_seconds=self.clock.now(),
            eni_ids=[e.id for e in enis], eni_devices=[e.device_number for e in enis])


def simulate(instance_type: str, pods: int, *, warm_eni_target: int | None = None,
             warm_ip_target: int | None = None, minimum_ip_target: int | None = None,
             warm_prefix_target: int | None = None, prefix_delegation: bool = False,
             max_pods: int | None = None) -> SimulationResult:
    env = env_for(warm_eni_target, warm_ip_target, minimum_ip_target, warm_prefix_target, prefix_delegation)
    if max_pods is None:
        max_pods = default_max_pods(instance_type, prefix_delegation)
    node = NodeSimulation(instance_type, env, max_pods)
    node.settle()
    for _ in range(pods):
        node.add_pod()
        node.settle()
    node.settle()
    return node.result()
