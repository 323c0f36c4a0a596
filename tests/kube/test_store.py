"""Store: versions, metadata, updates, watches, subscriptions, deletion and GC, persistence."""

from __future__ import annotations

import re
import threading

import pytest

from minieks.kube import ApiError, Store

from .helpers import deployment, replicaset_for, running_pod


def test_initial_namespaces_and_versions(store: Store) -> None:
    names = [n["metadata"]["name"] for n in store.list("namespaces")[0]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    before = store.resource_version
    cm = store.create("configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert int(cm["metadata"]["resourceVersion"]) == before + 1 == store.resource_version
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cm["metadata"]["creationTimestamp"])
    assert re.fullmatch(r"[0-9a-f-]{36}", cm["metadata"]["uid"])
    assert cm["metadata"]["namespace"] == "default" and cm["kind"] == "ConfigMap"
    assert "generation" not in cm["metadata"]
    ns = store.get("namespaces", None, "kube-system")
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "kube-system"
    assert ns["status"]["phase"] == "Active"


def test_errors_name_the_resource(store: Store) -> None:
    store.create("deployments", deployment())
    with pytest.raises(ApiError) as exc:
        store.create("deployments", deployment())
    assert exc.value.code == 409 and exc.value.message == 'deployments.apps "nginx-deployment" already exists'
    with pytest.raises(ApiError) as exc:
        store.get("pods", "default", "nosuch")
    assert exc.value.code == 404 and exc.value.message == 'pods "nosuch" not found'
    with pytest.raises(ApiError) as exc:
        store.create("pods", running_pod("p", "x", "10.0.0.1"), namespace="nowhere")
    assert exc.value.code == 400   # body says default, path says nowhere
    pod = running_pod("p", "x", "10.0.0.1")
    del pod["metadata"]["namespace"]
    with pytest.raises(ApiError) as exc:
        store.create("pods", pod, namespace="nowhere")
    assert exc.value.code == 404 and exc.value.message == 'namespaces "nowhere" not found'


def test_generation_follows_spec_changes(store: Store) -> None:
    d = store.create("deployments", deployment())
    assert d["metadata"]["generation"] == 1
    d = store.mutate("deployments", "default", "nginx-deployment",
                     lambda o: o["metadata"].setdefault("labels", {}).update(tier="web"))
    assert d["metadata"]["generation"] == 1
    d = store.mutate("deployments", "default", "nginx-deployment", lambda o: o["spec"].update(replicas=5))
    assert d["metadata"]["generation"] == 2
    d = store.patch("deployments", "default", "nginx-deployment", {"status": {"observedGeneration": 2}},
                    "merge", part="status")
    assert d["metadata"]["generation"] == 2 and d["status"]["observedGeneration"] == 2


def test_update_parts_and_conflicts(store: Store) -> None:
    pod = store.create("pods", running_pod("p", "x", "10.0.0.1"))
    stale = dict(pod, metadata=dict(pod["metadata"], resourceVersion="1"))
    with pytest.raises(ApiError) as exc:
        store.update("pods", stale)
    assert exc.value.code == 409 and "the object has been modified" in exc.value.message
    changed = dict(pod, status={"phase": "Failed"})
    changed["metadata"] = dict(pod["metadata"], labels={"app": "y"})
    out = store.update("pods", changed, part="main")
    assert out["status"]["phase"] == "Running" and out["metadata"]["labels"] == {"app": "y"}
    changed = dict(out, status={"phase": "Succeeded"}, spec={"containers": []})
    out2 = store.update("pods", changed, part="status")
    assert out2["status"]["phase"] == "Succeeded" and out2["spec"] == out["spec"]
    rv = store.resource_version
    same = store.update("pods", out2)
    assert same["metadata"]["resourceVersion"] == out2["metadata"]["resourceVersion"] and store.resource_version == rv


def test_list_order_and_selectors(store: Store) -> None:
    store.create("namespaces", {"metadata": {"name": "apps"}})
    for ns, name, app in (("default", "b", "x"), ("apps", "z", "x"), ("default", "a", "y")):
        pod = running_pod(name, app, "10.0.0.1")
        pod["metadata"]["namespace"] = ns
        store.create("pods", pod)
    items, rv = store.list("pods")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == \
        [("apps", "z"), ("default", "a"), ("default", "b")]
    assert rv == store.resource_version
    assert [i["metadata"]["name"] for i in store.list("pods", "default", labels="app=x")[0]] == ["b"]
    assert [i["metadata"]["name"] for i in store.list("pods", None, labels="app in (x,y),app!=y")[0]] == ["z", "b"]
    assert [i["metadata"]["name"] for i in store.list("pods", "default", fields="metadata.name=a")[0]] == ["a"]
    with pytest.raises(ApiError) as exc:
        store.list("pods", fields="spec.bogus=1")
    assert exc.value.code == 400


def _drain(w, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        ev = w.get(timeout=2)
        assert ev is not None, f"expected {n} events, got {out}"
        out.append((ev.type, ev.object["metadata"]["name"]))
    return out


def test_watch_replays_from_version_and_synthesizes_initial_state(store: Store) -> None:
    store.create("configmaps", {"metadata": {"name": "a"}})
    since = store.resource_version
    store.create("configmaps", {"metadata": {"name": "b"}})
    store.patch("configmaps", "default", "a", {"data": {"k": "v"}})
    store.delete("configmaps", "default", "b")
    with store.watch("configmaps", "default", resource_version=since) as w:
        assert _drain(w, 3) == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
        store.create("configmaps", {"metadata": {"name": "c"}})
        ev = w.get(timeout=2)
        assert ev.type == "ADDED" and int(ev.object["metadata"]["resourceVersion"]) == store.resource_version
        assert w.get(timeout=0.05) is None
    with store.watch("configmaps", "default", resource_version="0") as w:
        assert _drain(w, 2) == [("ADDED", "a"), ("ADDED", "c")]


def test_watch_too_old_is_gone() -> None:
    s = Store(history=3)
    start = s.resource_version
    for i in range(5):
        s.create("configmaps", {"metadata": {"name": f"c{i}"}})
    with pytest.raises(ApiError) as exc:
        s.watch("configmaps", resource_version=start)
    assert exc.value.code == 410 and exc.value.reason == "Expired"
    assert exc.value.message.startswith(f"too old resource version: {start} (")
    s.watch("configmaps", resource_version=s.resource_version - 3).close()
    s.close()


def test_watch_selector_transitions(store: Store) -> None:
    store.create("pods", running_pod("p", "x", "10.0.0.1"))
    with store.watch("pods", "default", resource_version=store.resource_version, labels="app=x") as w:
        store.patch("pods", "default", "p", {"metadata": {"labels": {"app": "y"}}})
        store.patch("pods", "default", "p", {"metadata": {"labels": {"app": "x"}}})
        store.create("pods", running_pod("other", "z", "10.0.0.2"))
        assert _drain(w, 2) == [("DELETED", "p"), ("ADDED", "p")]
        assert w.get(timeout=0.05) is None


def test_subscription_runs_callbacks_in_order(store: Store) -> None:
    seen: list[tuple[str, str]] = []
    sub = store.subscribe(lambda ev: seen.append((ev.type, ev.object["metadata"]["name"])), "configmaps")
    for name in ("a", "b"):
        store.create("configmaps", {"metadata": {"name": name}})
    store.delete("configmaps", "default", "a")
    assert sub.wait_idle(5)
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    sub.close()


def test_subscription_callback_may_write(store: Store) -> None:
    """A controller reacting to an event writes back to the store without deadlocking."""
    def controller(ev) -> None:
        if ev.type == "ADDED" and ev.resource == "configmaps":
            store.create("events", {"metadata": {"name": ev.object["metadata"]["name"] + ".1"},
                                    "involvedObject": {"kind": "ConfigMap", "name": ev.object["metadata"]["name"]},
                                    "reason": "Seen"})
    sub = store.subscribe(controller, "configmaps")
    store.create("configmaps", {"metadata": {"name": "a"}})
    assert sub.wait_idle(5)
    assert store.get("events", "default", "a.1")["reason"] == "Seen"
    sub.close()


def test_graceful_pod_deletion(store: Store) -> None:
    store.create("pods", running_pod("bound", "x", "10.0.0.1"))
    res = store.delete("pods", "default", "bound")
    assert not res.finished
    meta = store.get("pods", "default", "bound")["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30 and meta["deletionTimestamp"]
    assert store.finalize_delete("pods", "default", "bound") is not None
    assert store.try_get("pods", "default", "bound") is None
    unbound = running_pod("unbound", "x", "10.0.0.2")
    del unbound["spec"]["nodeName"]
    store.create("pods", unbound)
    assert store.delete("pods", "default", "unbound").finished
    store.create("pods", running_pod("forced", "x", "10.0.0.3"))
    assert store.delete("pods", "default", "forced", grace_period=0).finished
    store.create("pods", running_pod("expiring", "x", "10.0.0.4"))
    store.delete("pods", "default", "expiring", grace_period=5)
    assert store.expire_graceful(now=4e9) == ["default/expiring"]


def test_garbage_collection_background(store: Store) -> None:
    d = store.create("deployments", deployment())
    rs = store.create("replicasets", replicaset_for(d))
    for i in range(2):
        store.create("pods", running_pod(f"p{i}", "nginx", f"10.0.0.{i}", owner=rs))
    with store.watch("pods", "default", resource_version=store.resource_version) as w:
        store.delete("deployments", "default", "nginx-deployment")
        assert store.try_get("replicasets", "default", rs["metadata"]["name"]) is None
        pods = store.list("pods")[0]
        assert all(p["metadata"].get("deletionTimestamp") for p in pods) and len(pods) == 2
        for p in pods:
            store.finalize_delete("pods", "default", p["metadata"]["name"])
        assert [t for t, _ in _drain(w, 4)] == ["MODIFIED", "MODIFIED", "DELETED", "DELETED"]
    assert store.list("pods")[0] == []


def test_garbage_collection_orphan_and_shared_owners(store: Store) -> None:
    d = store.create("deployments", deployment())
    rs = store.create("replicasets", replicaset_for(d))
    store.delete("deployments", "default", "nginx-deployment", propagation="Orphan")
    assert "ownerReferences" not in store.get("replicasets", "default", rs["metadata"]["name"])["metadata"]
    a = store.create("configmaps", {"metadata": {"name": "owner-a"}})
    b = store.create("configmaps", {"metadata": {"name": "owner-b"}})
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
            for o in (a, b)]
    store.create("configmaps", {"metadata": {"name": "child", "ownerReferences": refs}})
    store.delete("configmaps", "default", "owner-a")
    child = store.get("configmaps", "default", "child")
    assert [r["name"] for r in child["metadata"]["ownerReferences"]] == ["owner-b"]
    store.delete("configmaps", "default", "owner-b")
    assert store.try_get("configmaps", "default", "child") is None


def test_finalizers_hold_deletion(store: Store) -> None:
    store.create("configmaps", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    assert not store.delete("configmaps", "default", "held").finished
    assert store.get("configmaps", "default", "held")["metadata"]["deletionTimestamp"]
    store.patch("configmaps", "default", "held", {"metadata": {"finalizers": None}})
    assert store.try_get("configmaps", "default", "held") is None


def test_namespace_deletion(store: Store) -> None:
    store.create("namespaces", {"metadata": {"name": "team"}})
    store.create("configmaps", {"metadata": {"name": "c", "namespace": "team"}})
    pod = running_pod("p", "x", "10.0.0.1")
    pod["metadata"]["namespace"] = "team"
    store.create("pods", pod)
    assert not store.delete("namespaces", None, "team").finished
    assert store.get("namespaces", None, "team")["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as exc:
        store.create("configmaps", {"metadata": {"name": "late", "namespace": "team"}})
    assert exc.value.code == 403
    store.finalize_delete("pods", "team", "p")
    assert store.try_get("namespaces", None, "team") is None
    with pytest.raises(ApiError) as exc:
        store.delete("namespaces", None, "default")
    assert exc.value.code == 403


def test_generate_name_and_cluster_ip(store: Store) -> None:
    a = store.create("pods", {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", a["metadata"]["name"])
    s1 = store.create("services", {"metadata": {"name": "s1"}, "spec": {"ports": [{"port": 80}]}})
    s2 = store.create("services", {"metadata": {"name": "s2"}, "spec": {"ports": [{"port": 80}]}})
    assert s1["spec"]["clusterIP"] != s2["spec"]["clusterIP"]
    assert s1["spec"]["clusterIP"].startswith("10.100.") and s1["spec"]["ports"][0]["targetPort"] == 80


def test_persistence_reopen(tmp_path) -> None:
    path = str(tmp_path / "cluster.db")
    s = Store(path)
    d = s.create("deployments", deployment())
    s.create("eniconfigs", {"apiVersion": "crd.k8s.amazonaws.com/v1alpha1", "kind": "ENIConfig",
                            "metadata": {"name": "ap-northeast-2a"},
                            "spec": {"subnet": "subnet-0a", "securityGroups": ["sg-1"]}})
    s.delete("configmaps", None, "x") if s.try_get("configmaps", "default", "x") else None
    rv = s.resource_version
    s.close()
    s2 = Store(path)
    assert s2.resource_version == rv
    again = s2.get("deployments", "default", "nginx-deployment")
    assert again == d
    assert s2.get("eniconfigs", None, "ap-northeast-2a")["spec"]["subnet"] == "subnet-0a"
    assert [n["metadata"]["name"] for n in s2.list("namespaces")[0]][0] == "default"
    created = s2.create("configmaps", {"metadata": {"name": "after"}})
    assert int(created["metadata"]["resourceVersion"]) == rv + 1
    with s2.watch("configmaps", resource_version=rv) as w:
        assert _drain(w, 1) == [("ADDED", "after")]
    s2.close()


def test_concurrent_writers_get_unique_versions(store: Store) -> None:
    def writer(prefix: str) -> None:
        for i in range(25):
            store.create("configmaps", {"metadata": {"name": f"{prefix}-{i}"}})
    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = [int(c["metadata"]["resourceVersion"]) for c in store.list("configmaps")[0]]
    assert len(versions) == len(set(versions)) == 100


def test_dry_run_changes_nothing(store: Store) -> None:
    rv = store.resource_version
    out = store.create("deployments", deployment(), dry_run=True)
    assert out["metadata"]["generation"] == 1 and store.try_get("deployments", "default", "nginx-deployment") is None
    assert store.resource_version == rv
    store.create("deployments", deployment())
    rv = store.resource_version
    out = store.mutate("deployments", "default", "nginx-deployment", lambda o: o["spec"].update(replicas=7),
                       dry_run=True)
    assert out["spec"]["replicas"] == 7
    assert store.get("deployments", "default", "nginx-deployment")["spec"]["replicas"] == 2
    assert store.delete("deployments", "default", "nginx-deployment", dry_run=True).finished
    assert store.try_get("deployments", "default", "nginx-deployment") is not None and store.resource_version == rv
