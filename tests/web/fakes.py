"""A minimal stand-in for a running ClusterRuntime: a real in-process EC2, an in-memory Kubernetes
store and, per node, a real ipamd Datastore rendered by the real introspection code, so the board
reads exactly the JSON an ipamd serves, without namespaces or processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from minieks.clock import VirtualClock
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.service import Ec2Service
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.eni import IPAMKey, IPAMMetadata
from minieks.ipamd.introspection import enis_document
from minieks.kube.store import Store

NOW = 1_750_000_000.0
SUBNET = "myeks-Vpc1PublicSubnet1"


@dataclass
class FakeNode:
    instance_id: str
    namespace: str
    primary_ip: str
    cni_env: dict = field(default_factory=dict)


class FakeCluster:
    """EC2 + store + datastores; `fetch_enis` is what the Board calls instead of the HTTP fetch."""

    def __init__(self, name: str = "myeks"):
        self.clock = VirtualClock(NOW)
        self.svc = Ec2Service(placement="lowest")
        self.ec2 = InProcessEc2Client(self.svc)
        vpc = self.ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="192.168.1.0/24",
                                             AvailabilityZone="ap-northeast-2a")["Subnet"]["SubnetId"]
        self.store = Store()
        self.datastores: dict[str, Datastore] = {}   # node namespace -> datastore
        self.down: set[str] = set()                  # namespaces whose ipamd "does not answer"
        self.runtime = SimpleNamespace(spec=SimpleNamespace(name=name), store=self.store, kubelets={},
                                       lab=SimpleNamespace(ec2_service=self.svc, subnets={SUBNET: self.subnet}))

    def fetch_enis(self, namespace: str, env) -> dict:
        if namespace in self.down:
            raise ConnectionRefusedError("connection refused")
        return enis_document(self.datastores[namespace])

    def add_node(self, name: str, *, prefix_delegation: bool = False, max_pods: int = 17,
                 ready: bool = True) -> tuple[FakeNode, Datastore]:
        inst = self.ec2.run_instances(ImageId="ami-1", InstanceType="t3.medium", MinCount=1, MaxCount=1,
                                      SubnetId=self.subnet)["Instances"][0]
        node = FakeNode(inst["InstanceId"], f"mek-fake-{len(self.datastores)}", inst["PrivateIpAddress"])
        ds = Datastore(self.clock, pd_enabled=prefix_delegation, unix_offset=0)
        eni0 = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ds.add_eni(eni0, 0, is_primary=True, subnet_id=self.subnet)
        self.datastores[node.namespace] = ds
        self.runtime.kubelets[name] = SimpleNamespace(node=node)
        self.store.create("nodes", {"metadata": {"name": name, "labels": {
            "node.kubernetes.io/instance-type": "t3.medium", "topology.kubernetes.io/zone": "ap-northeast-2a"}},
            "status": {"allocatable": {"pods": str(max_pods)},
                       "addresses": [{"type": "InternalIP", "address": node.primary_ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})
        return node, ds

    def eni_ids(self, node: FakeNode) -> list[str]:
        reservations = self.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"]
        interfaces = reservations[0]["Instances"][0]["NetworkInterfaces"]
        return [i["NetworkInterfaceId"] for i in sorted(interfaces, key=lambda i: i["Attachment"]["DeviceIndex"])]

    def secondary_ips(self, node: FakeNode, ds: Datastore, count: int, device: int = 0) -> list[str]:
        """EC2 assigns `count` addresses to the ENI; ipamd takes them into its pool."""
        eni = self.eni_ids(node)[device]
        ips = [a["PrivateIpAddress"] for a in self.ec2.assign_private_ip_addresses(
            NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=count)["AssignedPrivateIpAddresses"]]
        for ip in ips:
            ds.add_ipv4_cidr(eni, f"{ip}/32")
        return ips

    def second_eni(self, node: FakeNode, ds: Datastore) -> str:
        eni = self.ec2.create_network_interface(SubnetId=self.subnet)["NetworkInterface"]["NetworkInterfaceId"]
        self.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=1)
        ds.add_eni(eni, 1, subnet_id=self.subnet)
        return eni

    def prefix(self, node: FakeNode, ds: Datastore, device: int = 0) -> str:
        eni = self.eni_ids(node)[device]
        prefix = self.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)[
            "AssignedIpv4Prefixes"][0]["Ipv4Prefix"]
        ds.add_ipv4_cidr(eni, prefix, is_prefix=True)
        return prefix

    def run_pod(self, ds: Datastore, node_name: str, name: str, namespace: str = "default",
                host_network: bool = False) -> str:
        """A Running pod; its address assigned by ipamd as a CNI ADD would (none for host network)."""
        ip = ""
        if not host_network:
            ip = ds.assign_pod_ipv4_address(IPAMKey("aws-cni", f"c-{name}", "eth0"),
                                            IPAMMetadata(namespace, name)).ip
        self.store.create("pods", {"metadata": {"name": name, "namespace": namespace},
                                   "spec": {"nodeName": node_name, "hostNetwork": host_network,
                                            "containers": [{"name": "c", "image": "nginx"}]}}, namespace=namespace)
        self.store.mutate("pods", namespace, name, lambda p: p.update(status={
            "phase": "Running", "podIP": ip or self.store.get("nodes", None, node_name)["status"]["addresses"][0][
                "address"]}), part="status")
        return ip

    def delete_pod(self, ds: Datastore, name: str, namespace: str = "default") -> None:
        ds.unassign_pod_ip_address(IPAMKey("aws-cni", f"c-{name}", "eth0"))
        self.store.delete("pods", namespace, name, grace_period=0)
