"""A lab without Kubernetes: a VPC, nodes each with its own ipamd process, and pods wired through
the real CNI plugin. What the cluster supervisor builds on, and what kernel tests drive directly.

    with Lab("t1") as lab:
        lab.create_vpc("192.168.0.0/16", {"a": ("192.168.1.0/24", "ap-northeast-2a")})
        node = lab.add_node("t3.medium", "a")
        pod = lab.add_pod(node, "default", "web")
        lab.pod_exec(pod, ["ping", "-c", "1", "203.0.113.10"])

The EC2 emulator runs in this process (its HTTP endpoint on 127.0.0.1 serves the ipamd processes),
the fabric follows it, and a registry file in the lab's state directory (`lab.json`) lets
`minieks node exec` / `minieks pod exec` and a crash cleanup find everything again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from minieks.cni import runtime
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.server import start_in_thread
from minieks.ec2.service import Ec2Service
from minieks.fabric import netns, processes, resolv
from minieks.fabric.fabric import Fabric, cleanup as fabric_cleanup, search_domain
from minieks.fabric.names import LabNames
from minieks.fabric.vpc import check_igw_mode

STATE_ROOT_ENV = "MINIEKS_STATE_ROOT"


def state_dir(lab: str) -> Path:
    """Where a lab keeps its files: `$MINIEKS_STATE_ROOT/mek-<lab>` (default /var/lib/mek-<lab>)."""
    return Path(os.environ.get(STATE_ROOT_ENV, "/var/lib")) / f"mek-{LabNames.of(lab).lab}"


class LabError(RuntimeError):
    pass


@dataclass
class LabNode:
    name: str                       # the instance id until Kubernetes names it
    instance_id: str
    namespace: str
    primary_ip: str
    subnet: str
    socket: str
    cni_env: dict[str, str] = field(default_factory=dict)
    instance_type: str = ""


@dataclass
class LabPod:
    namespace: str                  # Kubernetes namespace
    name: str
    node: str                       # instance id
    netns: str
    sandbox_id: str
    ip: str
    result: dict = field(default_factory=dict)


class Lab:
    def __init__(self, name: str, region: str = "ap-northeast-2", *, seed: int | str = 0,
                 placement: str = "random", persist: bool = True, service: Ec2Service | None = None,
                 ec2_port: int = 0, igw_mode: str = "eip"):
        self.names = LabNames.of(name)
        self.name = self.names.lab
        self.igw_mode = check_igw_mode(igw_mode)    # refused before anything starts
        self.state = state_dir(self.name)
        self.state.mkdir(parents=True, exist_ok=True)
        self.ec2_service = service or Ec2Service(region=region, seed=seed, placement=placement,
                                                 state_file=str(self.state / "ec2.sqlite") if persist else None)
        self.ec2 = InProcessEc2Client(self.ec2_service)
        try:
            self.server = start_in_thread(self.ec2_service, port=ec2_port)
        except OSError:
            self.server = start_in_thread(self.ec2_service)          # the old port is taken: any free one
        self.fabric = Fabric(self.ec2_service, self.name, igw_mode=self.igw_mode).start()
        self.nodes: dict[str, LabNode] = {}
        self.pods: dict[str, LabPod] = {}
        self.subnets: dict[str, str] = {}
        self.vpc_id: str | None = None
        self._lock = threading.RLock()        # kubelets of several nodes add pods concurrently

    # ---------------------------------------------------------------------------------- VPC
    def create_vpc(self, cidr: str, subnets: dict[str, tuple[str, str]], name: str = "") -> str:
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name or f"{self.name}-VPC"}]}]
        self.vpc_id = self.ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tags)["Vpc"]["VpcId"]
        for label, (subnet_cidr, zone) in subnets.items():
            sid = self.ec2.create_subnet(VpcId=self.vpc_id, CidrBlock=subnet_cidr, AvailabilityZone=zone,
                                         TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                             {"Key": "Name", "Value": label}]}])["Subnet"]["SubnetId"]
            self.ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
            self.subnets[label] = sid
        self._save()
        return self.vpc_id

    # -------------------------------------------------------------------------------- nodes
    def add_node(self, instance_type: str, subnet: str, cni_env: dict[str, str] | None = None,
                 max_pods: int | None = None, tags: dict[str, str] | None = None,
                 wait: float = 60.0, start: bool = True) -> LabNode:
        """Launch an instance and (unless `start` is False) start its ipamd (aws-node) for the node."""
        if subnet not in self.subnets:
            raise LabError(f"unknown subnet {subnet!r}; the lab has {', '.join(self.subnets) or 'none'}")
        tag_spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
        run = self.ec2.run_instances(ImageId="ami-0a1b2c3d4e5f60718", InstanceType=instance_type, MinCount=1,
                                     MaxCount=1, SubnetId=self.subnets[subnet],
                                     **({"TagSpecifications": tag_spec} if tags else {}))
        node = self.adopt_node(run["Instances"][0], subnet, cni_env)
        if start:
            self.start_ipamd(node, max_pods, wait)
        self._save()
        return node

    def adopt_node(self, instance: dict, subnet: str, cni_env: dict[str, str] | None = None) -> LabNode:
        """The lab's record of a running instance (new, or found again when a lab resumes); its ipamd is
        not started here."""
        iid = instance["InstanceId"]
        namespace = self.fabric.node_namespace(iid)
        if namespace is None:
            raise LabError(f"the fabric did not make a namespace for {iid}: {self.fabric.errors[-3:]}")
        node_dir = self.state / "nodes" / iid
        node_dir.mkdir(parents=True, exist_ok=True)
        env = {"ENABLE_IPv4": "true", "ENABLE_IPv6": "false", "CLUSTER_NAME": self.name, **(cni_env or {})}
        node = LabNode(name=iid, instance_id=iid, namespace=namespace, primary_ip=instance["PrivateIpAddress"],
                       subnet=subnet, socket=socket_path(self.name, iid), cni_env=env,
                       instance_type=instance["InstanceType"])
        self.nodes[iid] = node
        return node

    def start_ipamd(self, node: LabNode, max_pods: int | None = None, wait: float = 60.0,
                    extra_args: list[str] | None = None) -> None:
        node_dir = self.state / "nodes" / node.instance_id
        env = dict(os.environ, **node.cni_env, AWS_VPC_K8S_CNI_BACKING_STORE=str(node_dir / "ipam.json"))
        argv = [sys.executable, "-m", "minieks.cli", "ipamd", "run", "--endpoint-url", self.server.url,
                "--instance-id", node.instance_id, "--region", self.ec2_service.region, "--socket", node.socket,
                "--node-namespace", node.namespace, *(["--max-pods", str(max_pods)] if max_pods else []),
                *(extra_args or [])]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(node.socket)
        self.start_cni_executor(node)
        proc = processes.spawn(argv, self.state / "pids", f"ipamd-{node.instance_id}", env=env,
                               log_path=node_dir / "ipamd.log")
        deadline = time.time() + wait
        while not os.path.exists(node.socket):
            if proc.poll() is not None or time.time() > deadline:
                log = (node_dir / "ipamd.log").read_text()[-2000:]
                raise LabError(f"ipamd of {node.instance_id} did not start:\n{log}")
            time.sleep(0.05)

    def stop_ipamd(self, node: LabNode) -> None:
        processes.stop(self.state / "pids", f"ipamd-{node.instance_id}")
        processes.stop(self.state / "pids", f"cni-{node.instance_id}")

    def start_cni_executor(self, node: LabNode) -> None:
        """The node's warm CNI executor (cni/executor.py), in the node's namespace: the aws-cni
        executable hands its work to it instead of importing everything on every pod."""
        path = executor_socket(self.name, node.instance_id)
        name = f"cni-{node.instance_id}"
        if os.path.exists(path) and any(n == name for n, _ in processes.running(self.state / "pids")):
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        argv = ["ip", "netns", "exec", node.namespace, sys.executable, "-m", "minieks.cni.executor", "--socket", path]
        processes.spawn(argv, self.state / "pids", name,
                        log_path=self.state / "nodes" / node.instance_id / "cni-executor.log")

    # --------------------------------------------------------------------------------- pods
    def add_pod(self, node: LabNode, namespace: str, name: str, uid: str | None = None) -> LabPod:
        """A pod sandbox: its namespace, then CNI ADD through the real plugin (as kubelet does).
        On failure the sandbox is removed again and runtime.CniCallError carries the plugin's message."""
        uid = uid or hashlib.sha1(f"{namespace}/{name}/{time.time_ns()}".encode()).hexdigest()[:32]
        sandbox = sandbox_id(uid)
        pod_ns = sandbox_netns(node, uid)
        netns.create(pod_ns)
        ref = runtime.PodRef(namespace, name, uid, sandbox, netns.path(pod_ns))
        try:
            with netns.iproute(pod_ns) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            result = runtime.call("ADD", node.namespace, ref, node.socket, node.cni_env,
                                  executor=executor_socket(self.name, node.instance_id))
        except Exception:
            netns.delete(pod_ns)
            raise
        if self.fabric.resolver:
            resolv.write_resolv_conf(pod_ns, self.fabric.resolver,
                                     (f"{namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local",
                                      search_domain(self.ec2_service.region)))
        ip = result["ips"][0]["address"].split("/")[0]
        pod = LabPod(namespace, name, node.instance_id, pod_ns, sandbox, ip, result)
        with self._lock:
            self.pods[f"{namespace}/{name}"] = pod
            self._save()
        return pod

    def delete_pod(self, pod: LabPod) -> None:
        """CNI DEL (idempotent), then the sandbox's namespace goes, as containerd removes it."""
        node = self.nodes[pod.node]
        ref = runtime.PodRef(pod.namespace, pod.name, "", pod.sandbox_id, netns.path(pod.netns))
        runtime.call("DEL", node.namespace, ref, node.socket, node.cni_env, prev_result=pod.result or None,
                     executor=executor_socket(self.name, node.instance_id))
        netns.delete(pod.netns)
        resolv.remove_resolv_conf(pod.netns)
        with self._lock:
            self.pods.pop(f"{pod.namespace}/{pod.name}", None)
            self._save()

    # ---------------------------------------------------------------------------------- use
    def node_exec(self, node: LabNode, argv: list[str], check: bool = True, timeout: float = 60):
        return netns.run(node.namespace, argv, check=check, timeout=timeout)

    def pod_exec(self, pod: LabPod, argv: list[str], check: bool = True, timeout: float = 60):
        return netns.run(pod.netns, argv, check=check, timeout=timeout)

    # ------------------------------------------------------------------------------ the end
    def _save(self) -> None:
        data = {"lab": self.name, "endpoint": self.server.url, "igw_mode": self.igw_mode, "vpc": self.vpc_id,
                "subnets": self.subnets,
                "nodes": {k: asdict(v) for k, v in self.nodes.items()},
                "pods": {k: asdict(v) for k, v in self.pods.items()}}
        with self._lock:
            tmp = self.state / "lab.json.tmp"
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.state / "lab.json")

    def close(self, remove: bool = True) -> None:
        """Stop the ipamds and the servers; with `remove`, delete every namespace and file of the lab."""
        processes.stop_all(self.state / "pids")
        self.fabric.close()
        self.server.close()
        self.ec2_service.close()
        if remove:
            cleanup(self.name)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def socket_path(lab: str, instance_id: str) -> str:
    """The node's ipamd socket: short (a unix socket path has at most 107 bytes), under /run/mek-<lab>."""
    folder = Path("/run") / f"mek-{LabNames.of(lab).lab}"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"ipamd-{instance_id}.sock")


def executor_socket(lab: str, instance_id: str) -> str:
    return str(Path(socket_path(lab, instance_id)).with_name(f"cni-{instance_id}.sock"))


def sandbox_id(uid: str) -> str:
    """The pod sandbox's id (CNI_CONTAINERID): stable per pod, so a repeated ADD is idempotent."""
    return hashlib.sha256(f"sandbox/{uid}".encode()).hexdigest()


def sandbox_netns(node: LabNode, uid: str) -> str:
    """The pod's network namespace: under its node's name, so one prefix removes the node's pods too."""
    return f"{node.namespace}-{sandbox_id(uid)[:12]}"


def cleanup(lab: str, keep_state: bool = False) -> list[str]:
    """After anything, even `kill -9`: stop the lab's processes, remove its namespaces and files."""
    state = state_dir(lab)
    processes.stop_all(state / "pids", timeout=5)
    removed = fabric_cleanup(lab)
    shutil.rmtree(Path("/run") / f"mek-{LabNames.of(lab).lab}", ignore_errors=True)
    if not keep_state and state.exists():
        shutil.rmtree(state, ignore_errors=True)
    return removed


def load_registry(lab: str) -> dict:
    path = state_dir(lab) / "lab.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {lab!r} is running here (no {path})") from None
