"""Server-side printing: ages, pod status rules and the column sets kubectl prints."""

from __future__ import annotations

import pytest

from minieks.kube.tables import pod_status, table
from minieks.kube.timefmt import human_duration, parse_rfc3339, rfc3339

from .helpers import deployment, node, running_pod

NOW = parse_rfc3339("2026-11-27T12:00:00Z")


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (7200, "120m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 600, "3h10m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (3 * 86400 + 4 * 3600, "3d4h"), (8 * 86400, "8d"),
    (400 * 86400, "400d"), (2 * 365 * 86400, "2y"), (2 * 365 * 86400 + 10 * 86400, "2y10d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_rfc3339_round_trip() -> None:
    assert rfc3339(NOW + 0.9) == "2026-11-27T12:00:00Z"
    assert parse_rfc3339("2026-11-27T12:00:00.123456Z") == pytest.approx(NOW + 0.123456)


def _pod_with(state: dict, **extra) -> dict:
    pod = running_pod("p", "web", "10.0.0.1")
    pod["status"]["containerStatuses"][0].update(state=state, ready=False, **extra)
    return pod


def test_pod_status_rules() -> None:
    assert pod_status(running_pod("p", "web", "10.0.0.1")) == "Running"
    assert pod_status(_pod_with({"waiting": {"reason": "ContainerCreating"}})) == "ContainerCreating"
    assert pod_status(_pod_with({"terminated": {"exitCode": 2}})) == "ExitCode:2"
    assert pod_status(_pod_with({"terminated": {"exitCode": 0, "reason": "Completed"}})) == "Completed"
    pending = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    assert pod_status(pending) == "Pending"
    evicted = dict(pending, status={"phase": "Failed", "reason": "Evicted"})
    assert pod_status(evicted) == "Evicted"
    terminating = running_pod("p", "web", "10.0.0.1")
    terminating["metadata"]["deletionTimestamp"] = "2026-11-27T12:00:30Z"
    assert pod_status(terminating) == "Terminating"
    init = running_pod("p", "web", "10.0.0.1")
    init["spec"]["initContainers"] = [{"name": "i1"}, {"name": "i2"}]
    init["status"]["initContainerStatuses"] = [
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"running": {}}}]
    assert pod_status(init) == "Init:1/2"


def _cells(resource: str, obj: dict, wide_names: bool = False) -> dict:
    t = table(resource, [obj], 7, NOW)
    names = [c["name"] for c in t["columnDefinitions"]]
    return dict(zip(names, t["rows"][0]["cells"]))


def test_pod_table() -> None:
    pod = running_pod("netshoot", "netshoot", "192.168.1.113")
    pod["metadata"]["creationTimestamp"] = "2026-11-27T11:50:00Z"
    t = table("pods", [pod], 1054, NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "1054"}
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1),
        ("Nominated Node", 1), ("Readiness Gates", 1)]
    assert t["rows"][0]["cells"] == ["netshoot", "1/1", "Running", "0", "10m", "192.168.1.113",
                                     "ip-192-168-1-51.ap-northeast-2.compute.internal", "<none>", "<none>"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert t["rows"][0]["object"]["metadata"]["labels"] == {"app": "netshoot"}
    full = table("pods", [pod], 1, NOW, include="Object", with_columns=False)
    assert full["rows"][0]["object"] is pod and "columnDefinitions" not in full
    pending = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    assert _cells("pods", pending)["IP"] == "<none>" and _cells("pods", pending)["Node"] == "<none>"
    restarted = running_pod("r", "web", "10.0.0.2")
    restarted["status"]["containerStatuses"][0].update(
        restartCount=2, lastState={"terminated": {"exitCode": 1, "finishedAt": "2026-11-27T11:57:00Z"}})
    assert _cells("pods", restarted)["Restarts"] == "2 (3m ago)"


def test_node_table() -> None:
    n = node()
    n["metadata"]["creationTimestamp"] = "2026-11-27T10:00:00Z"
    cells = _cells("nodes", n)
    assert cells == {"Name": "ip-192-168-1-51.ap-northeast-2.compute.internal", "Status": "Ready", "Roles": "<none>",
                     "Age": "120m", "Version": "v1.31.4-eks-aeac579", "Internal-IP": "192.168.1.51",
                     "External-IP": "<none>", "OS-Image": "Amazon Linux 2023.6.20250107",
                     "Kernel-Version": "6.1.119-129.201.amzn2023.x86_64", "Container-Runtime": "containerd://1.7.25"}
    n["spec"]["unschedulable"] = True
    n["status"]["conditions"][0]["status"] = "False"
    n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
    cells = _cells("nodes", n)
    assert cells["Status"] == "NotReady,SchedulingDisabled" and cells["Roles"] == "control-plane"


def test_workload_event_service_namespace_tables() -> None:
    d = deployment()
    d["metadata"]["creationTimestamp"] = "2026-11-27T11:59:00Z"
    d["status"] = {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}
    assert _cells("deployments", d) == {"Name": "nginx-deployment", "Ready": "1/2", "Up-to-date": 2, "Available": 1,
                                        "Age": "60s", "Containers": "nginx", "Images": "nginx:1.27",
                                        "Selector": "app=nginx"}
    rs = dict(d, status={"replicas": 2, "readyReplicas": 2})
    cells = _cells("replicasets", rs)
    assert (cells["Desired"], cells["Current"], cells["Ready"]) == (2, 2, 2)
    ev = {"metadata": {"name": "p.18a2f0c1d2e3f4a5", "namespace": "default"}, "type": "Normal", "reason": "Scheduled",
          "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
          "message": "Successfully assigned default/p to n1 ", "source": {"component": "kubelet", "host": "n1"},
          "firstTimestamp": "2026-11-27T11:50:00Z", "lastTimestamp": "2026-11-27T11:55:00Z", "count": 3}
    assert _cells("events", ev) == {"Last Seen": "5m", "Type": "Normal", "Reason": "Scheduled", "Object": "pod/p",
                                    "Subobject": "spec.containers{c}", "Source": "kubelet, n1",
                                    "Message": "Successfully assigned default/p to n1", "First Seen": "10m",
                                    "Count": 3, "Name": "p.18a2f0c1d2e3f4a5"}
    svc = {"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "10.100.0.2",
                                                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
                                                 "selector": {"app": "web"}}}
    cells = _cells("services", svc)
    assert (cells["Type"], cells["Cluster-IP"], cells["External-IP"], cells["Port(s)"], cells["Selector"]) == \
        ("NodePort", "10.100.0.2", "<none>", "80:30080/TCP", "app=web")
    assert _cells("namespaces", {"metadata": {"name": "default"}, "status": {"phase": "Active"}})["Status"] == "Active"
    eni = {"metadata": {"name": "ap-northeast-2a", "creationTimestamp": "2026-11-27T11:00:00Z"}}
    t = table("eniconfigs", [eni], 1, NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["ap-northeast-2a", "60m"]
