"""Defaulting as the real API server does it on create and update, for the fields that clients
read back (describe, rollout status, the Python client's required fields).

Pure functions of the object; the Service cluster IP comes from `next_cluster_ip`, which the store
calls with the addresses already in use.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

SERVICE_CIDR = ipaddress.ip_network("10.100.0.0/16")   # EKS's default service range


def _container(c: dict[str, Any]) -> None:
    image = str(c.get("image") or "")
    tag = image.rsplit("/", 1)[-1]
    if "imagePullPolicy" not in c:
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if isinstance(c, dict):
                _container(c)


def _workload(obj: dict[str, Any], kind: str) -> None:
    spec = obj.setdefault("spec", {})
    if kind != "DaemonSet":
        spec.setdefault("replicas", 1)
    if kind == "Deployment":
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    if kind == "DaemonSet":
        spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
    template = spec.get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        if isinstance(template.get("spec"), dict):
            pod_spec(template["spec"])


def next_cluster_ip(used: Iterable[str]) -> str:
    taken = set(used)
    for host in SERVICE_CIDR.hosts():
        text = str(host)
        if host.packed[-2:] == b"\x00\x01" or text in taken:  # .0.1 is the kubernetes service
            continue
        return text
    raise RuntimeError("service CIDR exhausted")


def _service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    if spec.get("clusterIP") and spec.get("clusterIP") != "None":
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


# Go fields without omitempty are always on the wire; strict clients (the Python client) need them
_NODE_INFO_FIELDS = ("architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "kubeProxyVersion",
                     "kubeletVersion", "machineID", "operatingSystem", "osImage", "systemUUID")


def _container_statuses(status: dict[str, Any]) -> None:
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if isinstance(cs, dict):
                for field, value in (("name", ""), ("image", ""), ("imageID", ""), ("ready", False),
                                     ("restartCount", 0)):
                    cs.setdefault(field, value)
                cs.setdefault("state", {})
                cs.setdefault("lastState", {})


def _node(obj: dict[str, Any]) -> None:
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        info = status.setdefault("nodeInfo", {})
        if isinstance(info, dict):
            for field in _NODE_INFO_FIELDS:
                info.setdefault(field, "")
        status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 10250}})


def apply(kind: str, obj: dict[str, Any]) -> None:
    """Fill defaults in place for `kind`."""
    if kind == "Pod":
        if isinstance(obj.get("spec"), dict):
            pod_spec(obj["spec"])
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", "BestEffort")
        _container_statuses(status)
    elif kind == "Node":
        _node(obj)
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        _workload(obj, kind)
        status = obj.setdefault("status", {})
        if kind == "DaemonSet":
            for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"):
                status.setdefault(key, 0)
        elif kind == "ReplicaSet":
            status.setdefault("replicas", 0)
    elif kind == "Service":
        _service(obj)
    elif kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Event":
        obj.setdefault("involvedObject", {})
        obj.setdefault("count", 1)
        obj.setdefault("type", "Normal")
        obj.setdefault("reportingComponent", "")
        obj.setdefault("reportingInstance", "")
        for field in ("firstTimestamp", "lastTimestamp", "eventTime"):
            obj.setdefault(field, None)
