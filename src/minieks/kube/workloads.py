"""Deployments → ReplicaSets → Pods, and DaemonSets → one Pod per node.

Simplified from kube-controller-manager but faithful where `kubectl` and the seed lab look:
object names (`<deployment>-<pod-template-hash>`, `<rs>-<5 chars>`), labels, ownerReferences,
the status blocks `get`, `describe` and `rollout status` read, and the events they print
(ScalingReplicaSet, SuccessfulCreate, SuccessfulDelete). A template change creates a new
ReplicaSet at full size and scales the old ones to zero.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable

from minieks.cluster.naming import template_hash
from minieks.kube.controller import Controller, Key, is_controlled_by, own_key, owner_keys, owner_reference
from minieks.kube.errors import ApiError
from minieks.kube.events import EventRecorder
from minieks.kube.selectors import parse_labels
from minieks.kube.store import Store
from minieks.kube.timefmt import parse_rfc3339, rfc3339


def selector_text(selector: dict) -> str:
    """A LabelSelector object as the text form the store's selectors understand."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_active(pod: dict) -> bool:
    return (not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def _condition(type_: str, status: str, reason: str, message: str, now: str, old: list[dict]) -> dict:
    previous = next((c for c in old if c.get("type") == type_), None)
    transition = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": transition}


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, store: Store):
        super().__init__(store)
        self.events = EventRecorder(store, "replicaset-controller")

    def watches(self):
        return [("replicasets", own_key), ("pods", owner_keys("ReplicaSet"))]

    def all_keys(self) -> Iterable[Key]:
        items, _ = self.store.list("replicasets")
        return [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in items]

    def reconcile(self, key: Key) -> None:
        namespace, name = key
        rs = self.store.try_get("replicasets", namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods, _ = self.store.list("pods", namespace, labels=selector_text(rs["spec"].get("selector") or {}))
        owned = [p for p in pods if is_controlled_by(p, rs)]
        active = [p for p in owned if pod_active(p)]
        want = int(rs["spec"].get("replicas", 1))
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = self._new_pod(rs)
                created = self.store.create("pods", pod, namespace=namespace)
                self.events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        elif len(active) > want:
            for pod in sorted(active, key=_deletion_rank)[:len(active) - want]:
                try:
                    self.store.delete("pods", namespace, pod["metadata"]["name"])
                except ApiError:
                    continue
                self.events.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        pods, _ = self.store.list("pods", namespace, labels=selector_text(rs["spec"].get("selector") or {}))
        active = [p for p in pods if is_controlled_by(p, rs) and pod_active(p)]
        ready = sum(1 for p in active if pod_ready(p))
        status = {"replicas": len(active), "fullyLabeledReplicas": len(active), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        if not ready:
            status.pop("readyReplicas")
            status.pop("availableReplicas")
        self.store.mutate("replicasets", namespace, name, lambda cur: cur.update(status=status), part="status")

    @staticmethod
    def _new_pod(rs: dict) -> dict:
        template = copy.deepcopy(rs["spec"]["template"])
        meta = template.get("metadata") or {}
        meta.pop("creationTimestamp", None)
        meta["generateName"] = rs["metadata"]["name"] + "-"
        meta["namespace"] = rs["metadata"]["namespace"]
        meta["ownerReferences"] = [owner_reference(rs, "apps/v1", "ReplicaSet")]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}


def _deletion_rank(pod: dict) -> tuple:
    """Which pods a scale-down removes first: unscheduled, then not ready, then the newest."""
    scheduled = bool(pod["spec"].get("nodeName"))
    created = parse_rfc3339(pod["metadata"]["creationTimestamp"])
    return (scheduled, pod_ready(pod), -created, pod["metadata"]["name"])


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, store: Store):
        super().__init__(store)
        self.events = EventRecorder(store, "deployment-controller")

    def watches(self):
        return [("deployments", own_key), ("replicasets", owner_keys("Deployment"))]

    def all_keys(self) -> Iterable[Key]:
        items, _ = self.store.list("deployments")
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in items]

    def reconcile(self, key: Key) -> None:
        namespace, name = key
        deploy = self.store.try_get("deployments", namespace, name)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return
        spec = deploy["spec"]
        template = copy.deepcopy(spec["template"])
        template.get("metadata", {}).pop("creationTimestamp", None)
        hash_ = template_hash(template)
        rs_name = f"{name}-{hash_}"
        want = int(spec.get("replicas", 1))
        all_rs, _ = self.store.list("replicasets", namespace)
        owned = [r for r in all_rs if is_controlled_by(r, deploy)]
        current = next((r for r in owned if r["metadata"]["name"] == rs_name), None)
        revision = 1 + max((int(r["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0))
                            for r in owned), default=0)
        if current is None:
            current = self.store.create("replicasets", self._new_rs(deploy, rs_name, hash_, template, want, revision),
                                        namespace=namespace)
            self.events.record(deploy, "Normal", "ScalingReplicaSet",
                               f"Scaled up replica set {rs_name} from 0 to {want}")
        elif current["spec"].get("replicas") != want:
            before = current["spec"].get("replicas", 0)
            self.store.mutate("replicasets", namespace, rs_name, lambda r: r["spec"].update(replicas=want))
            verb = "up" if want > before else "down"
            self.events.record(deploy, "Normal", "ScalingReplicaSet",
                               f"Scaled {verb} replica set {rs_name} from {before} to {want}")
        for old in owned:
            if old["metadata"]["name"] != rs_name and old["spec"].get("replicas", 0) != 0:
                before = old["spec"]["replicas"]
                self.store.mutate("replicasets", namespace, old["metadata"]["name"],
                                  lambda r: r["spec"].update(replicas=0))
                self.events.record(deploy, "Normal", "ScalingReplicaSet",
                                   f"Scaled down replica set {old['metadata']['name']} from {before} to 0")
        self._update_status(deploy, rs_name)

    @staticmethod
    def _new_rs(deploy: dict, rs_name: str, hash_: str, template: dict, replicas: int, revision: int) -> dict:
        labels = dict(template.get("metadata", {}).get("labels") or {}, **{"pod-template-hash": hash_})
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(deploy["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": deploy["metadata"]["namespace"], "labels": labels,
                             "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas),
                                             "deployment.kubernetes.io/max-replicas": str(replicas + max(1, replicas // 4)),
                                             "deployment.kubernetes.io/revision": str(revision)},
                             "ownerReferences": [owner_reference(deploy, "apps/v1", "Deployment")]},
                "spec": {"replicas": replicas, "selector": selector, "template": template}}

    def _update_status(self, deploy: dict, rs_name: str) -> None:
        namespace, name = deploy["metadata"]["namespace"], deploy["metadata"]["name"]
        all_rs, _ = self.store.list("replicasets", namespace)
        owned = [r for r in all_rs if is_controlled_by(r, deploy)]
        replicas = sum((r.get("status") or {}).get("replicas", 0) for r in owned)
        ready = sum((r.get("status") or {}).get("readyReplicas", 0) for r in owned)
        new = next((r for r in owned if r["metadata"]["name"] == rs_name), None)
        updated = (new.get("status") or {}).get("replicas", 0) if new else 0
        want = int(deploy["spec"].get("replicas", 1))
        now = rfc3339(time.time())
        old_conditions = (deploy.get("status") or {}).get("conditions") or []
        max_unavailable = want // 4
        available_ok = ready >= want - max_unavailable
        conditions = [_condition("Available", "True" if available_ok else "False",
                                 "MinimumReplicasAvailable" if available_ok else "MinimumReplicasUnavailable",
                                 "Deployment has minimum availability." if available_ok
                                 else "Deployment does not have minimum availability.", now, old_conditions)]
        complete = updated == want and ready == want and replicas == want
        progressing = self._progressing(deploy, rs_name, complete, now, old_conditions)
        conditions.append(progressing)
        status = {"observedGeneration": deploy["metadata"].get("generation", 1), "replicas": replicas,
                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                  "unavailableReplicas": max(want - ready, 0), "conditions": conditions}
        for key in ("readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status[key]:
                status.pop(key)

        def write(cur: dict) -> None:
            keep = {c["type"]: c for c in (cur.get("status") or {}).get("conditions") or []}
            for c in status["conditions"]:
                prev = keep.get(c["type"])
                if prev and {k: v for k, v in prev.items() if k != "lastUpdateTime"} == \
                        {k: v for k, v in c.items() if k != "lastUpdateTime"}:
                    c["lastUpdateTime"] = prev["lastUpdateTime"]
            cur["status"] = status
        self.store.mutate("deployments", namespace, name, write, part="status")

    @staticmethod
    def _progressing(deploy: dict, rs_name: str, complete: bool, now: str, old: list[dict]) -> dict:
        if complete:
            return _condition("Progressing", "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{rs_name}" has successfully progressed.', now, old)
        previous = next((c for c in old if c.get("type") == "Progressing"), None)
        deadline = int(deploy["spec"].get("progressDeadlineSeconds", 600))
        if previous and previous.get("reason") == "ProgressDeadlineExceeded":
            return previous
        if previous and previous.get("status") == "True" and previous.get("reason") == "ReplicaSetUpdated" and \
                time.time() - parse_rfc3339(previous["lastUpdateTime"]) > deadline:
            return _condition("Progressing", "False", "ProgressDeadlineExceeded",
                              f'ReplicaSet "{rs_name}" has timed out progressing.', now, old)
        condition = _condition("Progressing", "True", "ReplicaSetUpdated",
                               f'ReplicaSet "{rs_name}" is progressing.', now, old)
        if previous and previous.get("reason") == "ReplicaSetUpdated":
            condition["lastUpdateTime"] = previous["lastUpdateTime"]
        return condition


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, store: Store):
        super().__init__(store)
        self.events = EventRecorder(store, "daemonset-controller")

    def watches(self):
        def all_daemonsets(_ev) -> list[Key]:
            return list(self.all_keys())
        return [("daemonsets", own_key), ("pods", owner_keys("DaemonSet")), ("nodes", all_daemonsets)]

    def all_keys(self) -> Iterable[Key]:
        items, _ = self.store.list("daemonsets")
        return [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in items]

    def reconcile(self, key: Key) -> None:
        namespace, name = key
        ds = self.store.try_get("daemonsets", namespace, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        nodes, _ = self.store.list("nodes")
        selector = (ds["spec"]["template"].get("spec") or {}).get("nodeSelector") or {}
        eligible = [n for n in nodes if all(n["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        pods, _ = self.store.list("pods", namespace)
        owned = [p for p in pods if is_controlled_by(p, ds) and pod_active(p)]
        by_node = {p["spec"].get("nodeName"): p for p in owned}
        for node in eligible:
            node_name = node["metadata"]["name"]
            if node_name not in by_node:
                pod = ReplicaSetController._new_pod({**ds, "spec": {**ds["spec"]}})
                pod["metadata"]["ownerReferences"] = [owner_reference(ds, "apps/v1", "DaemonSet")]
                pod["spec"]["nodeName"] = node_name
                created = self.store.create("pods", pod, namespace=namespace)
                self.events.record(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        names = {n["metadata"]["name"] for n in eligible}
        for node_name, pod in by_node.items():
            if node_name not in names:
                self.store.delete("pods", namespace, pod["metadata"]["name"])
        pods, _ = self.store.list("pods", namespace)
        owned = [p for p in pods if is_controlled_by(p, ds) and pod_active(p)]
        ready = sum(1 for p in owned if pod_ready(p))
        status = {"currentNumberScheduled": len(owned), "desiredNumberScheduled": len(eligible),
                  "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
                  "updatedNumberScheduled": len(owned), "observedGeneration": ds["metadata"].get("generation", 1)}
        if ready < len(eligible):
            status["numberUnavailable"] = len(eligible) - ready
        self.store.mutate("daemonsets", namespace, name, lambda cur: cur.update(status=status), part="status")


__all__ = ["DaemonSetController", "DeploymentController", "ReplicaSetController", "parse_labels", "selector_text"]
