"""Deployments, ReplicaSets, DaemonSets and the scheduler against the store, without kubelets."""

import time

import pytest

from minieks.kube.scheduler import Scheduler, unschedulable_message
from minieks.kube.store import Store
from minieks.kube.workloads import DaemonSetController, DeploymentController, ReplicaSetController


def node(name: str, pods: int = 17) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {}, "status": {"capacity": {"pods": str(pods)}, "allocatable": {"pods": str(pods)},
                                   "conditions": [{"type": "Ready", "status": "True"}]}}


def deployment(name: str, replicas: int, image: str = "nginx:alpine") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


@pytest.fixture
def cluster():
    store = Store()
    controllers = [DeploymentController(store), ReplicaSetController(store), DaemonSetController(store),
                   Scheduler(store)]
    for c in controllers:
        c.start()

    def settle():
        for _ in range(5):
            for c in controllers:
                c.wait_idle()
        time.sleep(0.05)
        for c in controllers:
            c.wait_idle()
    yield store, settle
    for c in controllers:
        c.stop()
    store.close()


def pods_of(store, app):
    pods, _ = store.list("pods", "default", labels=f"app={app}")
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_deployment_makes_a_replicaset_and_pods_with_kubernetes_names(cluster):
    store, settle = cluster
    store.create("nodes", node("ip-192-168-1-10.ap-northeast-2.compute.internal"))
    store.create("deployments", deployment("nginx-deployment", 2))
    settle()
    [rs] = store.list("replicasets", "default")[0]
    assert rs["metadata"]["name"].startswith("nginx-deployment-")
    pods = pods_of(store, "nginx-deployment")
    assert len(pods) == 2
    for p in pods:
        assert p["metadata"]["name"].startswith(rs["metadata"]["name"] + "-")
        assert len(p["metadata"]["name"]) == len(rs["metadata"]["name"]) + 6
        assert p["metadata"]["labels"]["pod-template-hash"] == rs["metadata"]["labels"]["pod-template-hash"]
        assert p["spec"]["nodeName"] == "ip-192-168-1-10.ap-northeast-2.compute.internal"
    events, _ = store.list("events", "default")
    reasons = [e["reason"] for e in events]
    assert "ScalingReplicaSet" in reasons and reasons.count("SuccessfulCreate") == 2 and "Scheduled" in reasons


def test_scale_up_down_and_delete_cascade(cluster):
    store, settle = cluster
    store.create("nodes", node("n1"))
    store.create("deployments", deployment("web", 2))
    settle()
    store.patch("deployments", "default", "web", {"spec": {"replicas": 5}})
    settle()
    assert len(pods_of(store, "web")) == 5
    store.patch("deployments", "default", "web", {"spec": {"replicas": 1}})
    settle()
    assert len(pods_of(store, "web")) == 1
    d = store.get("deployments", "default", "web")
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    store.delete("deployments", "default", "web")
    settle()
    assert store.list("replicasets", "default")[0] == []


def daemonset(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"k8s-app": name}},
                     "template": {"metadata": {"labels": {"k8s-app": name}},
                                  "spec": {"hostNetwork": True, "containers": [{"name": name, "image": name}]}}}}


def test_the_seed_cluster_runs_out_of_max_pods(cluster):
    store, settle = cluster
    for n in range(3):
        store.create("nodes", node(f"node-{n}", pods=17))
    store.create("daemonsets", daemonset("aws-node"))
    store.create("daemonsets", daemonset("kube-proxy"))
    settle()
    assert len(store.list("pods", "kube-system")[0]) == 6
    store.create("deployments", deployment("nginx-deployment", 50))
    settle()
    pods = pods_of(store, "nginx-deployment")
    bound = [p for p in pods if p["spec"].get("nodeName")]
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert (len(bound), len(pending)) == (45, 5)          # 3 × 17 − 6 host-network pods
    message = ("0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are available: "
               "3 No preemption victims found for incoming pod.")
    for p in pending:
        [cond] = [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", message)
    events, _ = store.list("events", "default", fields="reason=FailedScheduling")
    assert events and all(e["message"] == message and e["type"] == "Warning" for e in events)
    # scaling down frees room: the pending pods get nodes
    store.patch("deployments", "default", "nginx-deployment", {"spec": {"replicas": 45}})
    settle()
    assert all(p["spec"].get("nodeName") for p in pods_of(store, "nginx-deployment"))


def test_unschedulable_message_mixes_reasons():
    from collections import Counter
    message = unschedulable_message(3, Counter({"Too many pods": 2, "node(s) were unschedulable": 1}))
    assert message == ("0/3 nodes are available: 2 Too many pods, 1 node(s) were unschedulable. preemption: 0/3 "
                       "nodes are available: 2 No preemption victims found for incoming pod, 1 Preemption is not "
                       "helpful for scheduling.")


def test_workers_reconcile_keys_in_parallel_but_never_one_key_twice_at_once():
    """The kubelet's pod workers: several keys at once, one key never concurrently with itself, and a
    key queued during its own reconcile is reconciled again afterwards (nothing is lost)."""
    import threading

    from minieks.kube.controller import Controller

    class Recorder(Controller):
        workers = 4
        resync_seconds = 3600

        def __init__(self, store):
            super().__init__(store)
            self.lock = threading.Lock()
            self.running: dict = {}
            self.overlap_same = 0
            self.most_at_once = 0
            self.done: dict = {}

        def reconcile(self, key):
            with self.lock:
                if self.running.get(key):
                    self.overlap_same += 1
                self.running[key] = 1
                self.most_at_once = max(self.most_at_once, sum(self.running.values()))
            if key[1] == "k0" and self.done.get(key, 0) == 0:
                self.enqueue(key)                      # queued while it is being reconciled
            time.sleep(0.02)
            with self.lock:
                self.running[key] = 0
                self.done[key] = self.done.get(key, 0) + 1

    store = Store()
    ctl = Recorder(store)
    ctl.start()
    try:
        for _ in range(5):
            for i in range(8):
                ctl.enqueue(("ns", f"k{i}"))
        assert ctl.wait_idle(timeout=20)
    finally:
        ctl.stop()
        store.close()
    assert ctl.overlap_same == 0
    assert ctl.most_at_once > 1
    assert set(ctl.done) == {("ns", f"k{i}") for i in range(8)}
    assert ctl.done[("ns", "k0")] >= 2
