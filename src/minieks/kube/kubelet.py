"""The kubelet of one lab node: registers the Node, runs the pods bound to it, deletes them.

A pod's sandbox is a network namespace wired by the CNI plugin (Lab.add_pod: the real aws-cni,
exec'd as containerd does). When the plugin fails, the pod stays ContainerCreating with a
FailedCreatePodSandBox event carrying the plugin's message in containerd's words, and the sandbox
is retried with back-off, as on EKS: the scheduler does not know about addresses, the kubelet
finds out. Deletion honours the grace period for images that ignore SIGTERM, then CNI DEL.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable

from minieks.aws import instance_types
from minieks.cluster import naming
from minieks.cni.runtime import CniCallError
from minieks.fabric import netns
from minieks.fabric.lab import Lab, LabNode, LabPod, sandbox_id, sandbox_netns
from minieks.kube.controller import Controller, Key
from minieks.kube.events import EventRecorder
from minieks.kube.images import ImageServers, image_name, stops_on_sigterm
from minieks.kube.store import Store
from minieks.kube.timefmt import parse_rfc3339, rfc3339
from minieks.kube.watch import WatchEvent

MAX_BACKOFF = 10.0


def _normalised_image(image: str) -> str:
    name = image_name(image)
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    return (f"docker.io/library/{name}:{tag}" if "/" not in name and "." not in name.split("/")[0]
            else f"{name}:{tag}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sandbox_message(sandbox_id: str, plugin_message: str) -> str:
    """FailedCreatePodSandBox as containerd + kubelet word it on EKS."""
    return (f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox '
            f'"{sandbox_id}": plugin type="aws-cni" name="aws-cni" failed (add): {plugin_message}')


class Kubelet(Controller):
    name = "kubelet"
    resync_seconds = 10.0
    workers = 4             # kubelet's pod workers: several sandboxes (CNI ADDs) at once, as containerd runs them

    def __init__(self, store: Store, lab: Lab, node: LabNode, node_name: str, *, kube_version: str,
                 instance_type: str, zone: str, zone_id: str, region: str, cluster: str, nodegroup: str,
                 max_pods: int, public_ip: str | None, images: ImageServers):
        super().__init__(store)
        self.lab, self.node, self.node_name = lab, node, node_name
        self.kube_version, self.instance_type = kube_version, instance_type
        self.zone, self.zone_id, self.region, self.cluster, self.nodegroup = zone, zone_id, region, cluster, nodegroup
        self.max_pods, self.public_ip, self.images = max_pods, public_ip, images
        self.events = EventRecorder(store, "kubelet", host=node_name)
        self.sandboxes: dict[Key, LabPod] = {}
        self._attempts: dict[Key, int] = {}
        self._not_before: dict[Key, float] = {}
        self._timers: list[threading.Timer] = []
        self._timers_lock = threading.Lock()         # pod workers add timers concurrently
        self.name = f"kubelet-{node_name}"

    # ------------------------------------------------------------------------------ the node
    def register(self) -> None:
        itype = instance_types.get(self.instance_type)
        memory_kib = (itype.memory_mib or 1024) * 1024
        now = rfc3339(time.time())
        addresses = [{"type": "InternalIP", "address": self.node.primary_ip}]
        if self.public_ip:
            addresses.append({"type": "ExternalIP", "address": self.public_ip})
        addresses += [{"type": "InternalDNS", "address": self.node_name}, {"type": "Hostname", "address": self.node_name}]
        if self.public_ip:
            addresses.append({"type": "ExternalDNS",
                              "address": f"ec2-{self.public_ip.replace('.', '-')}.{self.region}.compute.amazonaws.com"})
        capacity = {"cpu": str(itype.vcpus or 2), "ephemeral-storage": "31444972Ki", "hugepages-1Gi": "0",
                    "hugepages-2Mi": "0", "memory": f"{memory_kib}Ki", "pods": str(self.max_pods)}
        allocatable = dict(capacity, cpu=f"{(itype.vcpus or 2) * 1000 - 70}m",
                           memory=f"{max(memory_kib - 570_000, 100_000)}Ki", **{"ephemeral-storage": "27905944324"})
        conditions = [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
             "message": "kubelet has sufficient memory available"},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
             "message": "kubelet has no disk pressure"},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
             "message": "kubelet has sufficient PID available"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}]
        for c in conditions:
            c.update(lastHeartbeatTime=now, lastTransitionTime=now)
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name,
                             "labels": naming.node_labels(self.node_name, itype, self.region, self.zone, self.zone_id,
                                                          self.cluster, self.nodegroup),
                             "annotations": {"alpha.kubernetes.io/provided-node-ip": self.node.primary_ip,
                                             "node.alpha.kubernetes.io/ttl": "0",
                                             "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"providerID": naming.provider_id(self.zone, self.node.instance_id)},
                "status": {"capacity": capacity, "allocatable": allocatable, "conditions": conditions,
                           "addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                           "nodeInfo": {"machineID": _digest(self.node.instance_id)[:32],
                                        "systemUUID": "ec2" + _digest(self.node.instance_id)[3:32],
                                        "bootID": _digest("boot" + self.node.instance_id)[:32],
                                        "kernelVersion": naming.KERNEL, "osImage": naming.OS_IMAGE,
                                        "containerRuntimeVersion": naming.RUNTIME,
                                        "kubeletVersion": naming.KUBELET_VERSIONS[self.kube_version],
                                        "kubeProxyVersion": naming.KUBELET_VERSIONS[self.kube_version],
                                        "operatingSystem": "linux", "architecture": "amd64"}}}
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": 40,
                          "renewTime": rfc3339(time.time()).replace("Z", ".000000Z")}}
        if self.store.try_get("leases", "kube-node-lease", self.node_name) is None:
            self.store.create("leases", lease, namespace="kube-node-lease")
        if self.store.try_get("nodes", None, self.node_name) is None:
            self.store.create("nodes", node)
        else:
            self.store.mutate("nodes", None, self.node_name,
                              lambda cur: cur.update(status=node["status"]), part="status")

    # ------------------------------------------------------------------------------ the pods
    def watches(self):
        def mine(ev: WatchEvent) -> list[Key]:
            meta = ev.object["metadata"]
            if ev.object["spec"].get("nodeName") == self.node_name or \
                    (ev.old and ev.old["spec"].get("nodeName") == self.node_name):
                return [(meta["namespace"], meta["name"])]
            return []
        return [("pods", mine)]

    def all_keys(self) -> Iterable[Key]:
        pods, _ = self.store.list("pods", fields=f"spec.nodeName={self.node_name}")
        return [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods] + list(self.sandboxes)

    def _later(self, key: Key, seconds: float) -> None:
        timer = threading.Timer(max(seconds, 0.05), self.enqueue, args=(key,))
        timer.daemon = True
        timer.start()
        with self._timers_lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]

    def reconcile(self, key: Key) -> None:
        namespace, name = key
        pod = self.store.try_get("pods", namespace, name)
        if pod is None or pod["spec"].get("nodeName") != self.node_name:
            self._teardown(key)
            return
        if pod["metadata"].get("deletionTimestamp"):
            self._terminate(key, pod)
            return
        if pod["spec"].get("hostNetwork"):
            self._set_running(pod, self.node.primary_ip)
            return
        sandbox = self.sandboxes.get(key)
        if sandbox is None:
            wait = self._not_before.get(key, 0) - time.time()
            if wait > 0:
                self._later(key, wait)
                return
            sandbox = self._create_sandbox(key, pod)
            if sandbox is None:
                return
        self.images.start(sandbox.netns, pod["spec"].get("containers") or [])
        self._set_running(pod, sandbox.ip)

    def _create_sandbox(self, key: Key, pod: dict) -> LabPod | None:
        meta = pod["metadata"]
        try:
            sandbox = self.lab.add_pod(self.node, meta["namespace"], meta["name"], uid=meta["uid"])
        except CniCallError as err:
            attempts = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempts
            delay = min(2 ** (attempts - 1), MAX_BACKOFF)
            self._not_before[key] = time.time() + delay
            self.events.record(pod, "Warning", "FailedCreatePodSandBox", sandbox_message(sandbox_id(meta["uid"]), err.msg))
            self._set_creating(pod)
            self._later(key, delay)
            return None
        self.sandboxes[key] = sandbox
        self._attempts.pop(key, None)
        self._not_before.pop(key, None)
        for c in pod["spec"].get("containers") or []:
            field_path = f"spec.containers{{{c['name']}}}"
            self.events.record(pod, "Normal", "Pulled",
                               f'Container image "{c.get("image")}" already present on machine', field_path)
            self.events.record(pod, "Normal", "Created", f"Created container {c['name']}", field_path)
            self.events.record(pod, "Normal", "Started", f"Started container {c['name']}", field_path)
        return sandbox

    def _terminate(self, key: Key, pod: dict) -> None:
        meta = pod["metadata"]
        deadline = parse_rfc3339(meta["deletionTimestamp"])
        containers = pod["spec"].get("containers") or []
        immediate = all(stops_on_sigterm(c) for c in containers) or meta.get("deletionGracePeriodSeconds") == 0
        if key in self.sandboxes or pod["spec"].get("hostNetwork"):
            for c in containers:
                self.events.record(pod, "Normal", "Killing", f"Stopping container {c['name']}",
                                   f"spec.containers{{{c['name']}}}")
        if not immediate and time.time() < deadline:
            self._later(key, deadline - time.time())
            return
        self._teardown(key)
        self.store.finalize_delete("pods", meta["namespace"], meta["name"])

    def _teardown(self, key: Key) -> None:
        sandbox = self.sandboxes.pop(key, None)
        self._attempts.pop(key, None)
        self._not_before.pop(key, None)
        if sandbox is None:
            return
        self.images.stop(sandbox.netns)
        try:
            self.lab.delete_pod(sandbox)
        except CniCallError:
            pass

    # -------------------------------------------------------------------------- pod status
    def _base_status(self, pod: dict) -> dict:
        status = dict(pod.get("status") or {})
        status.setdefault("startTime", rfc3339(time.time()))
        status["hostIP"] = self.node.primary_ip
        status["hostIPs"] = [{"ip": self.node.primary_ip}]
        status["qosClass"] = "BestEffort"
        return status

    @staticmethod
    def _conditions(pod: dict, ready: bool, names: list[str]) -> list[dict]:
        now = rfc3339(time.time())
        old = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}

        def cond(type_: str, ok: bool, reason: str = "", message: str = "") -> dict:
            status = "True" if ok else "False"
            prev = old.get(type_)
            out = {"type": type_, "status": status, "lastProbeTime": None,
                   "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status else now}
            if not ok and reason:
                out.update(reason=reason, message=message)
            return out
        unready = f"containers with unready status: [{' '.join(names)}]"
        return [cond("PodReadyToStartContainers", ready), cond("Initialized", True),
                cond("Ready", ready, "ContainersNotReady", unready),
                cond("ContainersReady", ready, "ContainersNotReady", unready),
                old.get("PodScheduled") or cond("PodScheduled", True)]

    def _set_creating(self, pod: dict) -> None:
        containers = pod["spec"].get("containers") or []
        status = self._base_status(pod)
        status["phase"] = "Pending"
        status["conditions"] = self._conditions(pod, False, [c["name"] for c in containers])
        status["containerStatuses"] = [
            {"name": c["name"], "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
             "ready": False, "restartCount": 0, "image": _normalised_image(c.get("image", "")), "imageID": "",
             "started": False} for c in containers]
        self._write_status(pod, status)

    def _set_running(self, pod: dict, ip: str) -> None:
        if (pod.get("status") or {}).get("phase") == "Running" and pod["status"].get("podIP") == ip:
            return
        containers = pod["spec"].get("containers") or []
        status = self._base_status(pod)
        now = rfc3339(time.time())
        status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}],
                      conditions=self._conditions(pod, True, [c["name"] for c in containers]))
        uid = pod["metadata"]["uid"]
        status["containerStatuses"] = [
            {"name": c["name"], "state": {"running": {"startedAt": now}}, "lastState": {}, "ready": True,
             "restartCount": 0, "image": _normalised_image(c.get("image", "")),
             "imageID": f"{_normalised_image(c.get('image', '')).rsplit(':', 1)[0]}@sha256:{_digest(c.get('image', ''))}",
             "containerID": f"containerd://{_digest(uid + c['name'])}", "started": True} for c in containers]
        self._write_status(pod, status)

    def _write_status(self, pod: dict, status: dict) -> None:
        meta = pod["metadata"]

        def write(cur: dict) -> None:
            if cur["metadata"].get("uid") != meta["uid"] or cur["metadata"].get("deletionTimestamp"):
                return
            cur["status"] = status
        self.store.mutate("pods", meta["namespace"], meta["name"], write, part="status")

    # ------------------------------------------------------------------------- life cycle
    def stop(self) -> None:
        super().stop()
        for timer in self._timers:
            timer.cancel()

    def netns_of(self, namespace: str, name: str) -> str | None:
        """The pod's namespace: its sandbox, or (just after a restart, before the kubelet has re-checked
        it) the namespace its sandbox always has, if that exists."""
        sandbox = self.sandboxes.get((namespace, name))
        if sandbox:
            return sandbox.netns
        pod = self.store.try_get("pods", namespace, name)
        if pod and (pod.get("status") or {}).get("phase") == "Running":
            candidate = sandbox_netns(self.node, pod["metadata"]["uid"])
            return candidate if netns.exists(candidate) else None
        return None
