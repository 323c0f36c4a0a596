"""Server-side printing: meta.k8s.io Table responses, column by column as a real API server.

`kubectl get` (and `-o wide`, `-w`) prints whatever cells these return, so cells follow the real
printers' rules (pod STATUS from container states, node ROLES/INTERNAL-IP..., event OBJECT and
SOURCE) and ages are computed at response time (kubectl-wire.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .selectors import format_label_selector
from .timefmt import age, human_duration, parse_rfc3339

Obj = dict[str, Any]
Cell = Callable[[Obj, float], Any]


@dataclass(frozen=True)
class Column:
    name: str
    cell: Cell
    priority: int = 0
    type: str = "string"
    format: str = ""
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(part)
    return default if obj is None else obj


def _name(obj: Obj, _now: float) -> str:
    return _get(obj, "metadata", "name", default="")


def _age(obj: Obj, now: float) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"), now)


NAME = Column("Name", _name, format="name",
              description="Name must be unique within a namespace. Is required when creating resources, although "
                          "some resources may allow a client to request the generation of an appropriate name "
                          "automatically. Name is primarily intended for creation idempotence and configuration "
                          "definition. Cannot be updated.")
AGE = Column("Age", _age, description="CreationTimestamp is a timestamp representing the server time when this "
                                      "object was created. It is represented in RFC3339 form and is in UTC.")


def _none(text: Any) -> str:
    return str(text) if text not in (None, "") else "<none>"


def _join(values: list[str]) -> str:
    return ",".join(v for v in values if v)


def _labels_text(labels: dict[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


# --- pods ------------------------------------------------------------------------------------

def _terminated_reason(term: Obj) -> str:
    if term.get("reason"):
        return term["reason"]
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode', 0)}"


def _pod_ready_condition(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in _get(pod, "status", "conditions", default=[]))


def pod_status(pod: Obj) -> str:
    """The STATUS cell: phase or reason, container waiting/terminated reasons, Init:x/y, Terminating."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    reason = status.get("reason") or status.get("phase") or ""
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = spec.get("initContainers") or []
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        sidecar = i < len(init_specs) and init_specs[i].get("restartPolicy") == "Always"
        if sidecar and cs.get("started"):
            continue
        if term:
            reason = "Init:" + _terminated_reason(term)
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            wait, term = state.get("waiting"), state.get("terminated")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running" if _pod_ready_condition(pod) else "NotReady"
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_ready(pod: Obj, _now: float) -> str:
    total = len(_get(pod, "spec", "containers", default=[]))
    ready = sum(1 for cs in _get(pod, "status", "containerStatuses", default=[])
                if cs.get("ready") and (cs.get("state") or {}).get("running") is not None)
    return f"{ready}/{total}"


def _pod_restarts(pod: Obj, now: float) -> str:
    statuses = (_get(pod, "status", "initContainerStatuses", default=[]) +
                _get(pod, "status", "containerStatuses", default=[]))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    last = None
    for cs in statuses:
        finished = _get(cs, "lastState", "terminated", "finishedAt")
        if finished:
            try:
                t = parse_rfc3339(finished)
            except ValueError:
                continue
            last = t if last is None or t > last else last
    if restarts and last is not None:
        return f"{restarts} ({human_duration(now - last)} ago)"
    return str(restarts)


def _pod_readiness_gates(pod: Obj, _now: float) -> str:
    gates = _get(pod, "spec", "readinessGates", default=[])
    if not gates:
        return "<none>"
    conds = {c.get("type"): c.get("status") for c in _get(pod, "status", "conditions", default=[])}
    true = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


POD_COLUMNS = (
    NAME,
    Column("Ready", _pod_ready, description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", lambda p, _n: pod_status(p), description="The aggregate status of the containers in this pod."),
    Column("Restarts", _pod_restarts, description="The number of times the containers in this pod have been "
                                                  "restarted and when the last container in this pod has restarted."),
    AGE,
    Column("IP", lambda p, _n: _none(_get(p, "status", "podIP")), 1, description="The IP address assigned to the pod."),
    Column("Node", lambda p, _n: _none(_get(p, "spec", "nodeName")), 1,
           description="The name of the node this pod is scheduled on."),
    Column("Nominated Node", lambda p, _n: _none(_get(p, "status", "nominatedNodeName")), 1,
           description="The name of the node this pod was nominated to run on."),
    Column("Readiness Gates", _pod_readiness_gates, 1, description="The readiness gates of this pod."),
)


# --- nodes -----------------------------------------------------------------------------------

def _node_status(node: Obj, _now: float) -> str:
    out = []
    for cond in _get(node, "status", "conditions", default=[]):
        if cond.get("type") == "Ready":
            out.append("Ready" if cond.get("status") == "True" else "NotReady")
            break
    if not out:
        out.append("Unknown")
    if _get(node, "spec", "unschedulable"):
        out.append("SchedulingDisabled")
    return ",".join(out)


def node_roles(node: Obj) -> str:
    roles = set()
    for key, value in (_get(node, "metadata", "labels", default={}) or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key.split("/", 1)[1]:
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(kind: str) -> Cell:
    def cell(node: Obj, _now: float) -> str:
        for addr in _get(node, "status", "addresses", default=[]):
            if addr.get("type") == kind:
                return addr.get("address") or "<none>"
        return "<none>"
    return cell


def _node_info(field: str) -> Cell:
    return lambda node, _n: _get(node, "status", "nodeInfo", field) or "<unknown>"


NODE_COLUMNS = (
    NAME,
    Column("Status", _node_status, description="The status of the node"),
    Column("Roles", lambda n, _t: node_roles(n), description="The roles of the node"),
    AGE,
    Column("Version", lambda n, _t: _get(n, "status", "nodeInfo", "kubeletVersion", default=""),
           description="Kubelet Version reported by the node."),
    Column("Internal-IP", _node_address("InternalIP"), 1, description="List of addresses reachable to the node. "
                                                                    "Queried from cloud provider, if available."),
    Column("External-IP", _node_address("ExternalIP"), 1, description="List of addresses reachable to the node. "
                                                                    "Queried from cloud provider, if available."),
    Column("OS-Image", _node_info("osImage"), 1, description="OS Image reported by the node from /etc/os-release "
                                                             "(e.g. Debian GNU/Linux 7 (wheezy))."),
    Column("Kernel-Version", _node_info("kernelVersion"), 1, description="Kernel Version reported by the node from "
                                                                         "'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    Column("Container-Runtime", _node_info("containerRuntimeVersion"), 1,
           description="ContainerRuntime Version reported by the node through runtime remote API "
                       "(e.g. containerd://1.4.2)."),
)


# --- workloads ----------------------------------------------------------------------------

def _containers(obj: Obj) -> list[Obj]:
    return _get(obj, "spec", "template", "spec", "containers", default=[])


CONTAINERS = Column("Containers", lambda o, _n: _join([c.get("name", "") for c in _containers(o)]), 1,
                    description="Names of each container in the template.")
IMAGES = Column("Images", lambda o, _n: _join([c.get("image", "") for c in _containers(o)]), 1,
                description="Images referenced by each container in the template.")
SELECTOR = Column("Selector", lambda o, _n: format_label_selector(_get(o, "spec", "selector")), 1,
                  description="Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
                              "be the ones affected by this deployment.")


def _int(*path: str) -> Cell:
    return lambda o, _n: int(_get(o, *path, default=0) or 0)


DEPLOYMENT_COLUMNS = (
    NAME,
    Column("Ready", lambda d, _n: f"{int(_get(d, 'status', 'readyReplicas', default=0))}/"
                                  f"{int(_get(d, 'spec', 'replicas', default=0))}",
           description="Number of the pod with ready state"),
    Column("Up-to-date", _int("status", "updatedReplicas"), type="integer",
           description="Total number of non-terminated pods targeted by this deployment that have the desired "
                       "template spec."),
    Column("Available", _int("status", "availableReplicas"), type="integer",
           description="Total number of available pods (ready for at least minReadySeconds) targeted by this "
                       "deployment."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)

REPLICASET_COLUMNS = (
    NAME,
    Column("Desired", _int("spec", "replicas"), type="integer",
           description="Replicas is the number of desired replicas."),
    Column("Current", _int("status", "replicas"), type="integer",
           description="Replicas is the most recently observed number of replicas."),
    Column("Ready", _int("status", "readyReplicas"), type="integer",
           description="The number of ready replicas for this replica set."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)

DAEMONSET_COLUMNS = (
    NAME,
    Column("Desired", _int("status", "desiredNumberScheduled"), type="integer",
           description="The total number of nodes that should be running the daemon pod."),
    Column("Current", _int("status", "currentNumberScheduled"), type="integer",
           description="The number of nodes that are running at least 1 daemon pod and are supposed to run the "
                       "daemon pod."),
    Column("Ready", _int("status", "numberReady"), type="integer",
           description="The number of nodes that should be running the daemon pod and have one or more of the "
                       "daemon pod running and ready."),
    Column("Up-to-date", _int("status", "updatedNumberScheduled"), type="integer",
           description="The total number of nodes that are running updated daemon pod"),
    Column("Available", _int("status", "numberAvailable"), type="integer",
           description="The number of nodes that should be running the daemon pod and have one or more of the "
                       "daemon pod running and available."),
    Column("Node Selector", lambda d, _n: _labels_text(_get(d, "spec", "template", "spec", "nodeSelector")),
           description="NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


# --- events, namespaces, services, configmaps ----------------------------------------------

def _event_first(ev: Obj, now: float) -> str:
    return age(ev.get("firstTimestamp") or ev.get("eventTime"), now)


def _event_last(ev: Obj, now: float) -> str:
    series = ev.get("series")
    if series and series.get("lastObservedTime"):
        return age(series["lastObservedTime"], now)
    if ev.get("lastTimestamp"):
        return age(ev["lastTimestamp"], now)
    return _event_first(ev, now)


def _event_object(ev: Obj, _now: float) -> str:
    inv = ev.get("involvedObject") or {}
    kind = str(inv.get("kind") or "").lower()
    return f"{kind}/{inv['name']}" if inv.get("name") else kind


def _event_source(ev: Obj, _now: float) -> str:
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    instance = src.get("host") or ev.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def _event_count(ev: Obj, _now: float) -> int:
    series = ev.get("series")
    if series and series.get("count"):
        return int(series["count"])
    return int(ev.get("count") or 1)


EVENT_COLUMNS = (
    Column("Last Seen", _event_last, description="Time when this Event was last observed."),
    Column("Type", lambda e, _n: e.get("type", ""), description="Type of this event (Normal, Warning), new types "
                                                                "could be added in the future."),
    Column("Reason", lambda e, _n: e.get("reason", ""), description="This should be a short, machine understandable "
                                                                    "string that gives the reason for the transition "
                                                                    "into the object's current status."),
    Column("Object", _event_object, description="The object that this event is about."),
    Column("Subobject", lambda e, _n: _get(e, "involvedObject", "fieldPath", default=""), 1,
           description="The subobject that this event is about."),
    Column("Source", _event_source, 1, description="The component reporting this event. Should be a short machine "
                                                   "understandable string."),
    Column("Message", lambda e, _n: str(e.get("message") or "").strip(),
           description="A human-readable description of the status of this operation."),
    Column("First Seen", _event_first, 1, description="The time at which the event was first recorded. (Time of "
                                                      "server receipt is in TypeMeta.)"),
    Column("Count", _event_count, 1, type="integer", description="The number of times this event has occurred."),
    Column("Name", _name, 1, format="name", description="Name must be unique within a namespace."),
)

NAMESPACE_COLUMNS = (
    NAME,
    Column("Status", lambda n, _t: _get(n, "status", "phase", default=""),
           description="The status of the namespace"),
    AGE,
)


def _service_external(svc: Obj, _now: float) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = _get(svc, "status", "loadBalancer", "ingress", default=[])
        ips = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        return ",".join(ips + external) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName") or "<none>"
    return "<unknown>"


def _service_ports(svc: Obj, _now: float) -> str:
    out = []
    for p in _get(svc, "spec", "ports", default=[]):
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) or "<none>"


SERVICE_COLUMNS = (
    NAME,
    Column("Type", lambda s, _n: _get(s, "spec", "type", default="ClusterIP"),
           description="type determines how the Service is exposed."),
    Column("Cluster-IP", lambda s, _n: _none(_get(s, "spec", "clusterIP")),
           description="clusterIP is the IP address of the service and is usually assigned randomly."),
    Column("External-IP", _service_external, description="externalIPs is a list of IP addresses for which nodes "
                                                         "in the cluster will also accept traffic for this service."),
    Column("Port(s)", _service_ports, description="The list of ports that are exposed by this service."),
    AGE,
    Column("Selector", lambda s, _n: _labels_text(_get(s, "spec", "selector")), 1,
           description="Route service traffic to pods with label keys and values matching this selector."),
)

CONFIGMAP_COLUMNS = (
    NAME,
    Column("Data", lambda c, _n: len(c.get("data") or {}) + len(c.get("binaryData") or {}), type="integer",
           description="Data contains the configuration data."),
    AGE,
)

LEASE_COLUMNS = (
    NAME,
    Column("Holder", lambda lease, _n: _get(lease, "spec", "holderIdentity", default=""),
           description="holderIdentity contains the identity of the holder of a current lease."),
    AGE,
)

CRD_COLUMNS = (NAME, Column("Age", _age, type="date", description=AGE.description))

DEFAULT_COLUMNS = (
    NAME,
    Column("Created At", lambda o, _n: _get(o, "metadata", "creationTimestamp", default=""), type="date",
           description="CreationTimestamp is a timestamp representing the server time when this object was "
                       "created."),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "pods": POD_COLUMNS, "nodes": NODE_COLUMNS, "deployments": DEPLOYMENT_COLUMNS,
    "replicasets": REPLICASET_COLUMNS, "daemonsets": DAEMONSET_COLUMNS, "events": EVENT_COLUMNS,
    "namespaces": NAMESPACE_COLUMNS, "services": SERVICE_COLUMNS, "configmaps": CONFIGMAP_COLUMNS,
    "leases": LEASE_COLUMNS, "eniconfigs": CRD_COLUMNS,
}


def columns(resource: str) -> tuple[Column, ...]:
    return COLUMNS.get(resource, DEFAULT_COLUMNS)


def row_object(obj: Obj, include: str, table_version: str = "v1") -> Obj | None:
    """rows[].object: PartialObjectMetadata (default), the full object, or nothing."""
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{table_version}",
            "metadata": obj.get("metadata") or {}}


def table(resource: str, objects: list[Obj], resource_version: int | str, now: float, *,
          include: str = "Metadata", with_columns: bool = True, version: str = "v1") -> Obj:
    """A Table of `objects` (all columns, priority 1 included) at time `now`."""
    cols = columns(resource)
    rows = []
    for obj in objects:
        row: Obj = {"cells": [c.cell(obj, now) for c in cols]}
        ro = row_object(obj, include, version)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    out: Obj = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}",
                "metadata": {"resourceVersion": str(resource_version)}}
    if with_columns:
        out["columnDefinitions"] = [c.definition() for c in cols]
    out["rows"] = rows
    return out
