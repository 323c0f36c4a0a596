"""The scheduler: binds each pending pod to a node that has room for it, or says why not.

Room means the node's `status.allocatable.pods` (max pods, from the instance type and the CNI's
settings) is not yet used up by pods bound to it, host-network DaemonSet pods included; like
kube-scheduler, it knows nothing about the node's free IP addresses (so a pod can be bound and then
wait for an address in ContainerCreating). A pod that fits nowhere stays Pending with a
FailedScheduling event in kube-scheduler's words, and is tried again whenever pods or nodes change.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from minieks.kube.controller import Controller, Key, own_key
from minieks.kube.events import EventRecorder
from minieks.kube.store import Store
from minieks.kube.timefmt import rfc3339
from minieks.kube.watch import WatchEvent
from minieks.kube.workloads import pod_active

TOO_MANY_PODS = "Too many pods"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
UNSCHEDULABLE = "node(s) were unschedulable"
NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"


def _node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def unschedulable_message(total: int, reasons: Counter) -> str:
    """kube-scheduler's FailedScheduling text, e.g. for the seed's full cluster:
    0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are available: 3 No preemption
    victims found for incoming pod."""
    if total == 0:
        return "no nodes available to schedule pods"
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: kv[0]))
    helpful = reasons.get(TOO_MANY_PODS, 0)
    preemption = []
    if helpful:
        preemption.append(f"{helpful} No preemption victims found for incoming pod")
    if total - helpful:
        preemption.append(f"{total - helpful} Preemption is not helpful for scheduling")
    return (f"0/{total} nodes are available: {parts}. preemption: 0/{total} nodes are available: "
            f"{', '.join(preemption)}.")


class Scheduler(Controller):
    name = "scheduler"
    resync_seconds = 5.0

    def __init__(self, store: Store):
        super().__init__(store)
        self.events = EventRecorder(store, "default-scheduler")

    def watches(self):
        def pending_pods(_ev: WatchEvent) -> list[Key]:
            return list(self.all_keys())
        return [("pods", self._pod_keys), ("nodes", pending_pods)]

    def _pod_keys(self, ev: WatchEvent) -> list[Key]:
        if ev.type == "DELETED" or (ev.old is not None and pod_active(ev.old) and not pod_active(ev.object)):
            return list(self.all_keys())          # room may have been freed: look at every pending pod
        return own_key(ev)                        # a bind or a status write frees nothing

    def all_keys(self) -> Iterable[Key]:
        pods, _ = self.store.list("pods", fields="spec.nodeName=")
        pending = [p for p in pods if not p["spec"].get("nodeName") and pod_active(p)]
        pending.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        return [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pending]

    def reconcile(self, key: Key) -> None:
        namespace, name = key
        pod = self.store.try_get("pods", namespace, name)
        if pod is None or pod["spec"].get("nodeName") or not pod_active(pod):
            return
        nodes, _ = self.store.list("nodes")
        pods, _ = self.store.list("pods")
        used = Counter(p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName") and pod_active(p))
        selector = pod["spec"].get("nodeSelector") or {}
        reasons: Counter = Counter()
        fits = []
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                reasons[SELECTOR_MISMATCH] += 1
            elif node["spec"].get("unschedulable"):
                reasons[UNSCHEDULABLE] += 1
            elif not _node_ready(node):
                reasons[NOT_READY] += 1
            elif used[node["metadata"]["name"]] >= int((node.get("status") or {}).get("allocatable", {}).get("pods", 0)):
                reasons[TOO_MANY_PODS] += 1
            else:
                fits.append(node)
        if not fits:
            self._unschedulable(pod, unschedulable_message(len(nodes), reasons))
            return
        # LeastAllocated-like: the node with the fewest pods, ties by name
        best = min(fits, key=lambda n: (used[n["metadata"]["name"]], n["metadata"]["name"]))
        node_name = best["metadata"]["name"]
        now = rfc3339(time.time())

        def bind(cur: dict) -> None:
            if cur["spec"].get("nodeName"):
                return
            cur["spec"]["nodeName"] = node_name
            status = cur.setdefault("status", {})
            status["phase"] = status.get("phase") or "Pending"
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": now})
            status["conditions"] = conditions
        self.store.mutate("pods", namespace, name, bind)
        self.events.record(pod, "Normal", "Scheduled", f"Successfully assigned {namespace}/{name} to {node_name}")

    def _unschedulable(self, pod: dict, message: str) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        now = rfc3339(time.time())

        def mark(cur: dict) -> None:
            status = cur.setdefault("status", {})
            status["phase"] = "Pending"
            old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
            if old and old.get("reason") == "Unschedulable" and old.get("message") == message:
                return
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
                {"type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": now,
                 "reason": "Unschedulable", "message": message}]
        self.store.mutate("pods", namespace, name, mark)
        self.events.record(pod, "Warning", "FailedScheduling", message)
