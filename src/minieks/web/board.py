"""The board's snapshot: one JSON document with every node, its ENIs in device order, their address
slots and the pods on them, and the pods still waiting (with the reason a user would look up).

`build_snapshot` is a pure function of Kubernetes objects and per-node facts (EC2 metadata, the
ipamd document), so tests hand it plain data; `Board` gathers those facts from a running
ClusterRuntime and keeps the result for a moment, so many browsers polling cost one read of each
ipamd. Neighbours: slots.py colours the addresses, sources.py reads ipamd, server.py serves this.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from minieks.aws import instance_types
from minieks.ec2.metadata import instance_metadata
from minieks.web import slots, sources

log = logging.getLogger("minieks.board")

SANDBOX_FAILED = "FailedCreatePodSandBox"
CACHE_SECONDS = 0.5
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass
class NodeFacts:
    """What a node's EC2 metadata and ipamd say; `ipamd` None with `ipamd_error` when it did not answer."""

    instance_id: str = ""
    metadata: dict | None = None
    ipamd: dict | None = None
    ipamd_error: str | None = None
    cooldown: float = 30.0


# --------------------------------------------------------------------------------- pods

def pod_key(pod: Mapping) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace') or 'default'}/{meta['name']}"


def pod_status(pod: Mapping) -> str:
    """The word `kubectl get pods` puts in STATUS, for the cases the board tells apart."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase == "Pending" and pod["spec"].get("nodeName"):
        return "ContainerCreating"
    return phase


def pod_active(pod: Mapping) -> bool:
    """Counts against the node's max pods (what the scheduler counts)."""
    return (not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def failure_cause(message: str) -> str:
    """The CNI plugin's own words at the end of containerd's FailedCreatePodSandBox text (e.g. "add
    cmd: failed to assign an IP address to container"); other messages whole."""
    for marker in ("failed (add): ", "failed (delete): "):
        if marker in message:
            return message.rsplit(marker, 1)[1]
    return message


def _sandbox_failures(events: list[dict]) -> dict[tuple[str, str, str], dict]:
    """(namespace, pod name, pod uid) → its latest FailedCreatePodSandBox event."""
    latest: dict[tuple[str, str, str], dict] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if event.get("reason") != SANDBOX_FAILED or involved.get("kind") != "Pod":
            continue
        key = (involved.get("namespace") or "default", involved.get("name", ""), involved.get("uid", ""))
        seen = latest.get(key)
        order = (event.get("lastTimestamp") or "", event["metadata"]["name"])
        if seen is None or order >= (seen.get("lastTimestamp") or "", seen["metadata"]["name"]):
            latest[key] = event
    return latest


def pending_pods(pods: list[dict], events: list[dict]) -> list[dict]:
    """Pods in phase Pending, each with why: the scheduler's PodScheduled message when unbound,
    the kubelet's last FailedCreatePodSandBox message when bound but without a network."""
    failures = _sandbox_failures(events)
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        if pod["metadata"].get("deletionTimestamp") or (status.get("phase") or "Pending") != "Pending":
            continue
        meta, node = pod["metadata"], pod["spec"].get("nodeName")
        reason, message = "Pending", ""
        if not node:
            cond = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
            if cond and cond.get("status") == "False":
                reason, message = cond.get("reason") or "Unschedulable", cond.get("message") or ""
        else:
            event = failures.get((meta.get("namespace") or "default", meta["name"], meta.get("uid", ""))) \
                or failures.get((meta.get("namespace") or "default", meta["name"], ""))
            reason, message = (SANDBOX_FAILED, event.get("message", "")) if event else ("ContainerCreating", "")
        out.append({"namespace": meta.get("namespace") or "default", "name": meta["name"], "node": node,
                    "reason": reason, "message": message, "cause": failure_cause(message),
                    "owner": next((o.get("name") for o in meta.get("ownerReferences") or []), None)})
    return out


# -------------------------------------------------------------------------------- nodes

def _ready(node: Mapping) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def _internal_ip(node: Mapping) -> str:
    return next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") == "InternalIP"), "")


def _max_enis(instance_type: str) -> int | None:
    try:
        return instance_types.get(instance_type).max_enis
    except Exception:  # an unknown type still gets a board, without the ceiling
        return None


def _eni_view(interface: Mapping, ipamd_eni: Mapping | None, facts: NodeFacts, pods_by_ip: Mapping[str, str],
              subnet_names: Mapping[str, str], now: float) -> dict:
    eni_slots = slots.eni_slots(interface, ipamd_eni, facts.ipamd is not None, pods_by_ip, now, facts.cooldown)
    return {"id": interface["interface-id"], "device": interface["device-number"],
            "networkCard": interface.get("network-card", 0), "primaryIp": interface.get("local-ipv4", ""),
            "subnetId": interface.get("subnet-id", ""),
            "subnet": subnet_names.get(interface.get("subnet-id", ""), interface.get("subnet-id", "")),
            "subnetCidr": interface.get("subnet-ipv4-cidr-block", ""),
            "prefixes": list(interface.get("ipv4-prefix") or []),
            "excluded": bool((ipamd_eni or {}).get("IsExcludedForPodIPs")),
            "inIpamd": ipamd_eni is not None, "slots": eni_slots, "counts": slots.counts(eni_slots)}


def _pod_view(pod: Mapping, slot_owner: Mapping[str, str]) -> dict:
    status = pod.get("status") or {}
    ip = status.get("podIP") or ""
    return {"namespace": pod["metadata"].get("namespace") or "default", "name": pod["metadata"]["name"],
            "ip": ip, "status": pod_status(pod), "hostNetwork": bool(pod["spec"].get("hostNetwork")),
            "eni": slot_owner.get(ip)}


def node_view(node: Mapping, pods: list[dict], facts: NodeFacts | None, subnet_names: Mapping[str, str],
              now: float) -> dict:
    """One node's box: header facts, ENIs with slots, and its pods (host network ones apart)."""
    labels = node["metadata"].get("labels") or {}
    status = node.get("status") or {}
    instance_type = labels.get(INSTANCE_TYPE_LABEL, "")
    facts = facts or NodeFacts(ipamd_error="no kubelet in this supervisor runs this node")
    mine = [p for p in pods if p["spec"].get("nodeName") == node["metadata"]["name"]]
    pods_by_ip = {(p.get("status") or {}).get("podIP"): pod_key(p) for p in mine
                  if not p["spec"].get("hostNetwork") and (p.get("status") or {}).get("podIP")}
    by_id = slots.ipamd_enis(facts.ipamd)
    enis = [_eni_view(i, by_id.get(i["interface-id"]), facts, pods_by_ip, subnet_names, now)
            for i in (facts.metadata or {}).get("interfaces") or []]
    known = {pod_key(p) for p in mine}
    for item in (s for eni in enis for s in eni["slots"]):
        # ipamd still holds it for a pod Kubernetes no longer has: the CNI DEL has not run yet
        item["podGone"] = bool(item["pod"]) and item["pod"] not in known
    owner = {s["ip"]: eni["id"] for eni in enis for s in eni["slots"]}
    views = [_pod_view(p, owner) for p in mine]
    all_slots = [s for eni in enis for s in eni["slots"]]
    max_pods = (status.get("allocatable") or status.get("capacity") or {}).get("pods")
    return {"name": node["metadata"]["name"], "instanceId": facts.instance_id, "instanceType": instance_type,
            "zone": labels.get(ZONE_LABEL, ""), "primaryIp": _internal_ip(node), "ready": _ready(node),
            "maxPods": int(max_pods) if max_pods else None, "podCount": sum(pod_active(p) for p in mine),
            "maxEnis": _max_enis(instance_type), "eniCount": len(enis),
            "ipamd": {"ok": facts.ipamd is not None, "error": facts.ipamd_error}, "cooldownSeconds": facts.cooldown,
            "enis": enis, "counts": slots.counts(all_slots),
            "pods": sorted((v for v in views if not v["hostNetwork"]), key=lambda v: (v["namespace"], v["name"])),
            "hostPods": sorted((v for v in views if v["hostNetwork"]), key=lambda v: (v["namespace"], v["name"]))}


# ----------------------------------------------------------------------------- snapshot

def version_of(content: Mapping) -> str:
    """A short digest of what the page draws: unchanged data, unchanged version (no redraw)."""
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def build_snapshot(cluster: str, nodes: list[dict], pods: list[dict], events: list[dict],
                   facts: Mapping[str, NodeFacts], subnet_names: Mapping[str, str], now: float) -> dict:
    """The whole board as JSON-ready data."""
    views = [node_view(n, pods, facts.get(n["metadata"]["name"]), subnet_names, now)
             for n in sorted(nodes, key=lambda n: n["metadata"]["name"])]
    content = {"cluster": cluster, "nodes": views, "pending": pending_pods(pods, events)}
    totals = {"nodes": len(views), "pods": sum(v["podCount"] for v in views), "pending": len(content["pending"])}
    return {**content, "totals": totals, "version": version_of(content), "generatedAt": round(now, 3)}


# ------------------------------------------------------------------- from a live cluster

FetchEnis = Callable[[str, Mapping[str, str]], dict]


class Board:
    """Snapshots of a running cluster (anything with .spec.name, .store, .lab and .kubelets)."""

    def __init__(self, runtime: Any, fetch_enis: FetchEnis = sources.fetch_enis,
                 clock: Callable[[], float] = time.time, max_age: float = CACHE_SECONDS):
        self.runtime, self.fetch_enis, self.clock, self.max_age = runtime, fetch_enis, clock, max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def snapshot(self) -> dict:
        with self._lock:   # concurrent polls wait for one build instead of each reading every ipamd
            now = self.clock()
            if self._cached and now - self._cached[0] < self.max_age:
                return self._cached[1]
            snap = self._build(now)
            self._cached = (self.clock(), snap)
            return snap

    def _build(self, now: float) -> dict:
        runtime = self.runtime
        store, lab = runtime.store, runtime.lab
        if store is None:
            return build_snapshot(runtime.spec.name, [], [], [], {}, {}, now)
        nodes, _ = store.list("nodes")
        pods, _ = store.list("pods")
        waiting = any(pod_status(p) == "ContainerCreating" for p in pods)
        events = store.list("events")[0] if waiting else []
        facts = {name: self._facts(kubelet.node) for name, kubelet in list(runtime.kubelets.items())}
        subnet_names = {sid: name for name, sid in (getattr(lab, "subnets", None) or {}).items()}
        return build_snapshot(runtime.spec.name, nodes, pods, events, facts, subnet_names, now)

    def _facts(self, lab_node: Any) -> NodeFacts:
        env = getattr(lab_node, "cni_env", None) or {}
        facts = NodeFacts(instance_id=lab_node.instance_id, cooldown=sources.cooldown_seconds(env))
        try:
            facts.metadata = instance_metadata(self.runtime.lab.ec2_service, lab_node.instance_id)
        except Exception as err:  # terminated or unknown: the box shows no ENIs
            log.debug("no metadata for %s: %s", lab_node.instance_id, err)
        try:
            facts.ipamd = self.fetch_enis(lab_node.namespace, env)
        except Exception as err:  # not up yet, restarting: the board says so and keeps drawing
            facts.ipamd_error = str(err)
        return facts
