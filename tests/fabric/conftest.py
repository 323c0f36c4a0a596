"""A lab per test: an EC2 emulator with a VPC and one subnet per zone, and a Fabric following it.

Every lab has a fresh `mek-t<6 hex>` name; the fixture's finalizer removes the lab (namespaces,
/etc/netns dirs) whether the test passed or not, and a session finalizer sweeps every lab name
this run handed out, in case a finalizer itself was interrupted.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass

import pytest

from minieks.ec2.service import Ec2Service
from minieks.fabric import netns
from minieks.fabric.fabric import Fabric, cleanup

VPC_CIDR = "192.168.0.0/16"
SUBNETS = {"a": "192.168.1.0/24", "b": "192.168.2.0/24"}
REGION = "ap-northeast-2"
_USED: list[str] = []

kernel_only = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="kernel tests need root and iproute2"),
]


def new_lab_name() -> str:
    name = f"mek-t{secrets.token_hex(3)}"
    _USED.append(name)
    return name


@dataclass
class Lab:
    name: str
    svc: Ec2Service
    subnets: dict[str, str]          # zone letter -> subnet id
    fabric: Fabric | None = None

    def start(self) -> Fabric:
        self.fabric = Fabric(self.svc, self.name).start()
        return self.fabric

    def launch(self, zone: str = "a", public: bool = True) -> dict:
        spec = {"DeviceIndex": 0, "SubnetId": self.subnets[zone], "AssociatePublicIpAddress": public}
        return self.svc.call("RunInstances", {"ImageId": "ami-0minieks", "InstanceType": "t3.medium",
                                              "MinCount": 1, "MaxCount": 1,
                                              "NetworkInterfaces": [spec]})["Instances"][0]

    def node(self, instance: dict) -> str:
        return self.fabric.node_namespace(instance["InstanceId"])

    def sh(self, namespace: str, *argv: str, check: bool = True):
        return netns.run(namespace, list(argv), check=check)

    @property
    def prefix(self) -> str:
        return self.name + "-"


def make_service() -> tuple[Ec2Service, dict[str, str]]:
    svc = Ec2Service(region=REGION, placement="lowest")
    vpc = svc.call("CreateVpc", {"CidrBlock": VPC_CIDR})["Vpc"]["VpcId"]
    subnets = {}
    for zone, cidr in SUBNETS.items():
        subnets[zone] = svc.call("CreateSubnet", {"VpcId": vpc, "CidrBlock": cidr,
                                                  "AvailabilityZone": REGION + zone})["Subnet"]["SubnetId"]
    return svc, subnets


@pytest.fixture
def lab():
    svc, subnets = make_service()
    lab = Lab(new_lab_name(), svc, subnets)
    try:
        yield lab
    finally:
        if lab.fabric:
            lab.fabric.cleanup()
        cleanup(lab.name)
    assert netns.list_namespaces(lab.prefix) == []


@pytest.fixture(scope="session", autouse=True)
def _sweep_labs():
    yield
    for name in _USED:
        if os.geteuid() == 0:
            cleanup(name)
