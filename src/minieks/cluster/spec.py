"""What cluster to build: the seed lab's by default, changed by a YAML file.

A ClusterSpec is validated with pydantic so a bad file is refused whole with every problem named,
before anything is created (no partial state).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from minieks.aws import instance_types
from minieks.ec2.latency import PROFILES
from minieks.ec2.service import REGION_ZONES
from minieks.usage import UsageError

DEFAULT_CNI_ENV = {"ENABLE_IPv4": "true", "ENABLE_IPv6": "false", "WARM_ENI_TARGET": "1",
                   "WARM_PREFIX_TARGET": "1", "ENABLE_PREFIX_DELEGATION": "false",
                   "AWS_VPC_K8S_CNI_EXTERNALSNAT": "false", "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "prng",
                   "AWS_VPC_ENI_MTU": "9001", "AWS_VPC_K8S_CNI_VETHPREFIX": "eni"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SubnetSpec(_Strict):
    name: str
    cidr: str
    zone: str

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        network = ipaddress.IPv4Network(value)
        if not 16 <= network.prefixlen <= 28:
            raise ValueError("a subnet is between /16 and /28, as in AWS")
        return str(network)


class NodeGroupSpec(_Strict):
    name: str = "ng1"
    instance_type: str = Field("t3.medium", alias="instanceType")
    desired_capacity: int = Field(3, alias="desiredCapacity", ge=0, le=50)
    subnets: list[str] = Field(default_factory=list, description="subnet names; default: all, round robin")

    @field_validator("instance_type")
    @classmethod
    def _known(cls, value: str) -> str:
        instance_types.get(value)
        return value


class Ec2Spec(_Strict):
    latency: str = "instant"
    placement: str = "random"
    seed: int = 0
    throttling: bool = False

    @field_validator("latency")
    @classmethod
    def _latency(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"latency profile must be one of {', '.join(PROFILES)}")
        return value

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str) -> str:
        if value not in ("random", "lowest"):
            raise ValueError("placement must be random or lowest")
        return value


class ClusterSpec(_Strict):
    name: str = "myeks"
    region: str = "ap-northeast-2"
    kubernetes_version: str = Field("1.31", alias="kubernetesVersion")
    vpc_cidr: str = Field("192.168.0.0/16", alias="vpcCidr")
    subnets: list[SubnetSpec] = Field(default_factory=lambda: [
        SubnetSpec(name=f"myeks-Vpc1PublicSubnet{n}", cidr=f"192.168.{n}.0/24", zone=f"ap-northeast-2{z}")
        for n, z in ((1, "a"), (2, "b"), (3, "c"))])
    node_groups: list[NodeGroupSpec] = Field(default_factory=lambda: [NodeGroupSpec()], alias="nodeGroups")
    cni_env: dict[str, str] = Field(default_factory=dict, alias="cniEnv")
    ec2: Ec2Spec = Field(default_factory=Ec2Spec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        import re
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", value):
            raise ValueError("a cluster name is 1-16 lowercase letters or digits, starting with a letter (it names namespaces mek-<name>-...)")
        return value

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        import re
        if not re.fullmatch(r"1\.(2[7-9]|3[0-3])", value):
            raise ValueError("kubernetesVersion must be 1.27 to 1.33")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClusterSpec:
        if self.region not in REGION_ZONES:
            raise ValueError(f"region must be one of {', '.join(REGION_ZONES)}")
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        names = [s.name for s in self.subnets]
        if len(set(names)) != len(names):
            raise ValueError("subnet names must be unique")
        for s in self.subnets:
            if not ipaddress.IPv4Network(s.cidr).subnet_of(vpc):
                raise ValueError(f"subnet {s.name} ({s.cidr}) is not inside the VPC {vpc}")
            if s.zone[:-1] != self.region:
                raise ValueError(f"subnet {s.name}: zone {s.zone} is not in region {self.region}")
        nets = [ipaddress.IPv4Network(s.cidr) for s in self.subnets]
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a.overlaps(b):
                    raise ValueError(f"subnets {a} and {b} overlap")
        for group in self.node_groups:
            unknown = set(group.subnets) - set(names)
            if unknown:
                raise ValueError(f"node group {group.name} names unknown subnets: {', '.join(sorted(unknown))}")
        if not self.subnets:
            raise ValueError("a cluster needs at least one subnet")
        return self

    @property
    def cni_environment(self) -> dict[str, str]:
        """The aws-node DaemonSet's environment: the manifest's values, then the file's."""
        return dict(DEFAULT_CNI_ENV, CLUSTER_NAME=self.name, **self.cni_env)

    @property
    def prefix(self) -> str:
        """What every namespace, interface and file of this cluster starts with."""
        return f"mek-{self.name}-"


def load(path: str | Path | None) -> ClusterSpec:
    """The seed's cluster, or the one a YAML file describes; refused whole if anything is wrong."""
    if path is None:
        return ClusterSpec()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the cluster file must be a mapping")
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'cluster'}: {e['msg']}" for e in err.errors())
        raise UsageError(f"{path} is not a valid cluster: {problems}") from None
    except instance_types.UnknownInstanceType as err:
        raise UsageError(f"{path}: {err}") from None
