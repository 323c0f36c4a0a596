"""A running cluster in one process: EC2, the VPC fabric, the Kubernetes API and its controllers,
and per node an ipamd process and a kubelet. `ClusterRuntime(spec).start()` builds it the first
time and resumes it afterwards (EC2 and Kubernetes state live in SQLite files in the state dir).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from minieks.aws import instance_types
from minieks.cluster import logs, naming, system
from minieks.cluster.spec import DEFAULT_CNI_ENV, ClusterSpec, NodeGroupSpec
from minieks.ec2.latency import Latency
from minieks.ec2.service import Ec2Service
from minieks.fabric.lab import Lab, LabNode, state_dir
from minieks.ipamd.simulate import default_max_pods
from minieks.kube.apiserver import ApiServer
from minieks.kube.errors import ApiError
from minieks.kube.images import ImageServers
from minieks.kube.kubelet import Kubelet
from minieks.kube.scheduler import Scheduler
from minieks.kube.store import Store
from minieks.kube.workloads import DaemonSetController, DeploymentController, ReplicaSetController
from minieks.web.server import BoardServer

log = logging.getLogger("minieks.cluster")
GIT_VERSIONS = {"1.27": "v1.27.16-eks-2d5f260", "1.28": "v1.28.15-eks-2d5f260", "1.29": "v1.29.12-eks-2d5f260",
                "1.30": "v1.30.8-eks-2d5f260", "1.31": "v1.31.4-eks-2d5f260", "1.32": "v1.32.0-eks-2d5f260",
                "1.33": "v1.33.0-eks-802817d"}


class ClusterRuntime:
    def __init__(self, spec: ClusterSpec, progress=lambda message: None):
        self.spec = spec
        self.state = state_dir(spec.name)
        self.progress = progress
        self.lab: Lab | None = None
        self.store: Store | None = None
        self.api: ApiServer | None = None
        self.controllers: list = []
        self.kubelets: dict[str, Kubelet] = {}
        self.images = ImageServers()
        self.ready = threading.Event()

    # ------------------------------------------------------------------------------- start
    def start(self) -> ClusterRuntime:
        spec = self.spec
        self.state.mkdir(parents=True, exist_ok=True)
        endpoints = self._endpoints()
        self.progress("starting the EC2 emulator")
        service = Ec2Service(region=spec.region, seed=spec.ec2.seed, placement=spec.ec2.placement,
                             latency=Latency(spec.ec2.latency, seed=spec.ec2.seed), throttling=spec.ec2.throttling,
                             state_file=str(self.state / "ec2.sqlite"))
        self.lab = Lab(spec.name, spec.region, service=service, ec2_port=endpoints.get("ec2_port", 0))
        self.progress("starting the Kubernetes API server")
        self.store = Store(str(self.state / "kube.sqlite"))

        def api_server(port: int) -> ApiServer:
            return ApiServer(self.store, state_dir=self.state / "pki", port=port,
                             version=GIT_VERSIONS[spec.kubernetes_version], exec_handler=self.exec_target,
                             log_handler=self.pod_logs)
        self.api = api_server(endpoints.get("api_port", 0))
        try:
            self.api.start()
        except OSError:                          # the port of the last run is taken: any free one
            self.api = api_server(0)
            self.api.start()
        self.api.write_kubeconfig(self.state / "kubeconfig", cluster=spec.name, region=spec.region)
        self.board = BoardServer.for_runtime(self).start()       # the cluster board, on 127.0.0.1 only
        self._save_endpoints()
        self.controllers = [DeploymentController(self.store), ReplicaSetController(self.store),
                            DaemonSetController(self.store), Scheduler(self.store)]
        for controller in self.controllers:
            controller.start()
        self._provision()
        for name, obj in system.all_objects(spec.region, spec.kubernetes_version, spec.cni_environment):
            namespace = obj["metadata"].get("namespace")
            if self.store.try_get(name, namespace, obj["metadata"]["name"]) is None:
                try:
                    self.store.create(name, obj, namespace=namespace)
                except ApiError as err:
                    log.warning("could not create %s %s: %s", name, obj["metadata"]["name"], err)
        from minieks.cluster.admin import AdminServer
        self.admin = AdminServer(self, self.api.token).start()
        self._save_endpoints()
        self._aws_node_sub = self.store.subscribe(self._on_aws_node, "daemonsets", "kube-system",
                                                  fields="metadata.name=aws-node")
        self.ready.set()
        self.progress("cluster ready")
        return self

    # ------------------------------------------------------------ aws-node's environment
    def _on_aws_node(self, ev) -> None:
        """`kubectl set env daemonset aws-node ...` rolls aws-node: every ipamd restarts with the new env."""
        if ev.type != "MODIFIED":
            return
        containers = ev.object["spec"]["template"]["spec"].get("containers") or []
        env = {e["name"]: e["value"] for c in containers if c.get("name") == "aws-node"
               for e in c.get("env") or [] if "value" in e}
        if not env or env == self.spec.cni_environment:
            return
        base = dict(DEFAULT_CNI_ENV, CLUSTER_NAME=self.spec.name)
        self.spec = self.spec.model_copy(update={"cni_env": {k: v for k, v in env.items() if base.get(k) != v}})
        self._persist_spec()
        for kubelet in list(self.kubelets.values()):
            kubelet.node.cni_env = {**kubelet.node.cni_env, **self.spec.cni_environment}
            self.progress(f"restarting aws-node (ipamd) on {kubelet.node_name} with the new environment")
            self.lab.stop_ipamd(kubelet.node)
            self.lab.start_ipamd(kubelet.node, kubelet.max_pods, extra_args=self._ipamd_api_args(kubelet.node_name))

    def _persist_spec(self) -> None:
        (self.state / "cluster.json").write_text(self.spec.model_dump_json(by_alias=True, indent=1))

    # ---------------------------------------------------------------------- node groups
    def add_node_group(self, group: NodeGroupSpec) -> list[str]:
        """eksctl create nodegroup: launch the group's instances, each with its ipamd and kubelet."""
        if any(g.name == group.name for g in self.spec.node_groups):
            raise ValueError(f"node group {group.name} already exists")
        self.spec = self.spec.model_copy(update={"node_groups": [*self.spec.node_groups, group]})
        self._persist_spec()
        before = set(self.kubelets)
        self._launch(group, 0)
        return sorted(set(self.kubelets) - before)

    def delete_node_group(self, name: str, timeout: float = 120) -> list[str]:
        """eksctl delete nodegroup: cordon and drain the nodes, then terminate them."""
        if not any(g.name == name for g in self.spec.node_groups):
            raise ValueError(f"no node group {name}")
        victims = [k for k in self.kubelets.values() if k.nodegroup == name]
        for k in victims:
            self.store.mutate("nodes", None, k.node_name, lambda n: n["spec"].update(unschedulable=True))
        for k in victims:
            pods, _ = self.store.list("pods", fields=f"spec.nodeName={k.node_name}")
            for pod in pods:
                owners = pod["metadata"].get("ownerReferences") or []
                if not any(o.get("kind") == "DaemonSet" for o in owners):
                    self.store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        deadline = time.time() + timeout
        for k in victims:
            while time.time() < deadline and any(
                    not any(o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences") or [])
                    for p in self.store.list("pods", fields=f"spec.nodeName={k.node_name}")[0]):
                time.sleep(0.2)
        for k in victims:
            k.stop()
            self.lab.stop_ipamd(k.node)
            self.lab.ec2.terminate_instances(InstanceIds=[k.node.instance_id])
            for pod in self.store.list("pods", fields=f"spec.nodeName={k.node_name}")[0]:
                self.store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], grace_period=0)
            self.store.delete("nodes", None, k.node_name)
            self.lab.nodes.pop(k.node.instance_id, None)
            del self.kubelets[k.node_name]
        time.sleep(0.5)                      # the pod garbage collector: pods of vanished nodes go at once
        for k in victims:
            for pod in self.store.list("pods", fields=f"spec.nodeName={k.node_name}")[0]:
                self.store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"], grace_period=0)
        self.spec = self.spec.model_copy(update={"node_groups": [g for g in self.spec.node_groups if g.name != name]})
        self._persist_spec()
        return [k.node_name for k in victims]

    def _endpoints(self) -> dict:
        try:
            return json.loads((self.state / "endpoints.json").read_text())
        except (OSError, ValueError):
            return {}

    def _save_endpoints(self) -> None:
        data = {"region": self.spec.region, "ec2_port": self.lab.server.port, "ec2_url": self.lab.server.url, "api_port": self.api.port,
                "api_url": self.api.url, "kubeconfig": str(self.state / "kubeconfig"),
                "admin_url": self.admin.url if getattr(self, "admin", None) else None,
                "board_url": self.board.url if getattr(self, "board", None) else None}
        (self.state / "endpoints.json").write_text(json.dumps(data, indent=1))

    # ------------------------------------------------------------------------- EC2 resources
    def _provision(self) -> None:
        spec, lab = self.spec, self.lab
        ec2 = lab.ec2
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{spec.name}-VPC"]}])["Vpcs"]
        if not vpcs:
            self.progress(f"creating VPC {spec.vpc_cidr} and {len(spec.subnets)} subnets")
            lab.create_vpc(spec.vpc_cidr, {s.name: (s.cidr, s.zone) for s in spec.subnets}, name=f"{spec.name}-VPC")
        else:
            lab.vpc_id = vpcs[0]["VpcId"]
            for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [lab.vpc_id]}])["Subnets"]:
                name = next((t["Value"] for t in subnet.get("Tags", []) if t["Key"] == "Name"), subnet["SubnetId"])
                lab.subnets[name] = subnet["SubnetId"]
        running = [i for r in ec2.describe_instances(Filters=[
            {"Name": "instance-state-name", "Values": ["running"]},
            {"Name": "tag:eks:cluster-name", "Values": [spec.name]}])["Reservations"] for i in r["Instances"]]
        by_group: dict[str, list[dict]] = {}
        for inst in running:
            group = next((t["Value"] for t in inst.get("Tags", []) if t["Key"] == "eks:nodegroup-name"), "")
            by_group.setdefault(group, []).append(inst)
        subnet_names = {v: k for k, v in lab.subnets.items()}
        for group in spec.node_groups:
            have = by_group.get(group.name, [])
            for inst in have:
                self._start_node(lab.adopt_node(inst, subnet_names.get(inst["SubnetId"], ""), spec.cni_environment),
                                 inst, group.name, group.instance_type, adopted=True)
            self._launch(group, len(have))

    def _launch(self, group: NodeGroupSpec, start: int) -> None:
        spec, lab = self.spec, self.lab
        order = group.subnets or [s.name for s in spec.subnets]
        for n in range(start, group.desired_capacity):
            subnet = order[n % len(order)]
            self.progress(f"launching node {n + 1}/{group.desired_capacity} of {group.name} "
                          f"({group.instance_type}) in {subnet}")
            tags = {"Name": f"{spec.name}-{group.name}-Node", "eks:cluster-name": spec.name,
                    "eks:nodegroup-name": group.name, "alpha.eksctl.io/nodegroup-name": group.name,
                    f"kubernetes.io/cluster/{spec.name}": "owned"}
            max_pods = self._max_pods(group.instance_type)
            node = lab.add_node(group.instance_type, subnet, spec.cni_environment, max_pods=max_pods, tags=tags,
                                start=False)
            inst = lab.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"][0]["Instances"][0]
            self._start_node(node, inst, group.name, group.instance_type, adopted=False)

    def _ipamd_api_args(self, node_name: str) -> list[str]:
        return ["--kubeconfig", str(self.state / "kubeconfig"), "--node-name", node_name]

    def _max_pods(self, instance_type: str) -> int:
        pd = self.spec.cni_environment.get("ENABLE_PREFIX_DELEGATION", "false").lower() == "true"
        t = instance_types.get(instance_type)
        return default_max_pods(instance_type, pd and t.supports_prefix_delegation)

    def _start_node(self, node: LabNode, inst: dict, group: str, instance_type: str, adopted: bool) -> None:
        spec = self.spec
        zone = inst["Placement"]["AvailabilityZone"]
        node_name = naming.node_name(node.primary_ip, spec.region)
        node.name = node_name
        self.lab._save()
        max_pods = self._max_pods(instance_type)
        if adopted:
            self.progress(f"resuming node {node_name}")
        kubelet = Kubelet(self.store, self.lab, node, node_name, kube_version=spec.kubernetes_version,
                          instance_type=instance_type, zone=zone, zone_id=self.lab.ec2_service.zone_id(zone),
                          region=spec.region, cluster=spec.name, nodegroup=group, max_pods=max_pods,
                          public_ip=inst.get("PublicIpAddress"), images=self.images)
        kubelet.register()
        # aws-node reads max pods (the Node's capacity) and ENIConfigs from the API, like on EKS
        self.lab.start_ipamd(node, max_pods, extra_args=self._ipamd_api_args(node_name))
        kubelet.start()
        self.kubelets[node_name] = kubelet

    # ---------------------------------------------------------------------------- kubectl exec
    def _kubelet_of(self, obj: dict) -> Kubelet | None:
        return self.kubelets.get(obj["spec"].get("nodeName") or "")

    def _sandbox_of(self, kubelet: Kubelet, obj: dict, container: str) -> str:
        """The pod's network namespace, or the kubelet's refusal while it has none yet."""
        netns = kubelet.netns_of(obj["metadata"]["namespace"], obj["metadata"]["name"])
        if netns is None:
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{obj["metadata"]["name"]}" is waiting '
                                              f'to start: ContainerCreating')
        return netns

    def exec_target(self, namespace: str, pod: str, container: str, argv: list[str], tty: bool) -> list[str]:
        """`kubectl exec`: the command runs in the pod's network namespace with the host's tools."""
        obj = self.store.get("pods", namespace, pod)
        kubelet = self._kubelet_of(obj)
        if kubelet is None:
            raise ApiError(400, "BadRequest", f"pod {pod} is not running on a node of this cluster")
        netns = kubelet.node.namespace if obj["spec"].get("hostNetwork") else self._sandbox_of(kubelet, obj, container)
        return ["ip", "netns", "exec", netns, *argv]

    def _log_lines(self, namespace: str, pod: str, container: str) -> tuple[list[str], int]:
        """The container's stdout as EKS would show it (cluster/logs.py), and how many lines it wrote."""
        obj = self.store.get("pods", namespace, pod)
        kubelet = self._kubelet_of(obj)
        if kubelet is None:                      # not scheduled: the API server has no node to ask
            return [], 0
        if obj["spec"].get("hostNetwork"):
            is_aws_node = (obj["metadata"].get("labels") or {}).get("k8s-app") == "aws-node"
            serving = os.path.exists(kubelet.node.socket)
            lines = logs.aws_node_lines(obj, serving) if is_aws_node and container == "aws-node" else []
            return lines, len(lines)
        return self.images.logs(self._sandbox_of(kubelet, obj, container), container)

    def pod_logs(self, namespace: str, pod: str, container: str) -> Callable[[], str | None]:
        """`kubectl logs [-f]`: a reader of what the container wrote since the last read; refusals
        (ContainerCreating) are raised now, a pod that goes away later ends the stream."""
        first, seen = self._log_lines(namespace, pod, container)
        pending: list[str] | None = first

        def read() -> str | None:
            nonlocal pending, seen
            if pending is not None:
                new, pending = pending, None
            else:
                try:
                    lines, written = self._log_lines(namespace, pod, container)
                except ApiError:
                    return None
                new = lines[max(0, len(lines) - (written - seen)):] if written > seen else []
                seen = max(seen, written)
            return "".join(line + "\n" for line in new)
        return read

    # -------------------------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stop serving; namespaces, pods and state stay for the next `minieks up`."""
        if getattr(self, "board", None):
            self.board.stop()
        if getattr(self, "_aws_node_sub", None) and self.store:
            self.store.unsubscribe(self._aws_node_sub)
        if getattr(self, "admin", None):
            self.admin.stop()
        for kubelet in self.kubelets.values():
            kubelet.stop()
        for controller in self.controllers:
            controller.stop()
        self.images.stop_all()
        if self.api:
            self.api.stop()
        if self.lab:
            self.lab.close(remove=False)
        if self.store:
            self.store.close()

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"
