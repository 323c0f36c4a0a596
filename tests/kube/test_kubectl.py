"""End to end: the real kubectl against the HTTPS API server, command by command as users run them
(kubectl-wire.md lists what each command sends and what it prints on a real cluster)."""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from pathlib import Path

import pytest
import yaml

from minieks.kube import ApiServer, Store

from .conftest import needs_kubectl
from .helpers import NODE_NAME, Kubectl, deployment, replicaset_for, running_pod

pytestmark = needs_kubectl


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_get_nodes_and_version(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    _, server, kubectl = cluster
    rows = _lines(kubectl.ok("get", "nodes"))
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert rows[1][:3] == [NODE_NAME, "Ready", "<none>"] and rows[1][4] == "v1.31.4-eks-aeac579"
    wide = kubectl.ok("get", "no", "-o", "wide").splitlines()
    assert wide[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
                               "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    assert "192.168.1.51" in wide[1] and "Amazon Linux 2023.6.20250107" in wide[1]
    out = kubectl.ok("version")
    # the dispatcher runs the kubectl minor that /version reports: "31+" → kubectl 1.31
    assert "Client Version: v1.31." in out and "Server Version: v1.31.4-eks-2d5f260" in out


@pytest.mark.parametrize("version", ["v1.32.5", "v1.29.5"])
def test_kubectl_minor_follows_server_version(cluster: tuple[Store, ApiServer, Kubectl], tmp_path: Path,
                                              version: str) -> None:
    """minor "32" runs kubectl 1.32; "29" runs kubectl 1.29, which asks for v2beta1 discovery only."""
    store = cluster[0]
    with ApiServer(store, state_dir=tmp_path / "state", version=version) as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        kubectl = Kubectl(tmp_path / "kubeconfig", tmp_path / "cache")
        out = kubectl.ok("version")
        minor = version.rsplit(".", 1)[0]
        assert f"Client Version: {minor}." in out and f"Server Version: {version}" in out
        assert _lines(kubectl.ok("get", "nodes"))[1][0] == NODE_NAME
        assert "namespace/kube-system" in kubectl.ok("get", "ns", "-o", "name")


def test_apply_client_side_server_side_and_scale(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, _, kubectl = cluster
    manifest = yaml.safe_dump(deployment("web", replicas=2))
    assert kubectl.ok("apply", "-f", "-", stdin=manifest).strip() == "deployment.apps/web created"
    assert kubectl.ok("apply", "-f", "-", stdin=manifest).strip() == "deployment.apps/web unchanged"
    edited = yaml.safe_dump(deployment("web", replicas=3))
    assert kubectl.ok("apply", "-f", "-", stdin=edited).strip() == "deployment.apps/web configured"
    stored = store.get("deployments", "default", "web")
    assert stored["spec"]["replicas"] == 3 and stored["metadata"]["generation"] == 2
    assert json.loads(stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])[
        "spec"]["replicas"] == 3
    # a container change arrives as a strategic merge patch with $setElementOrder/containers
    new_image = yaml.safe_dump(deployment("web", replicas=3, image="nginx:1.27-alpine"))
    assert kubectl.ok("apply", "-f", "-", stdin=new_image).strip() == "deployment.apps/web configured"
    container = store.get("deployments", "default", "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.27-alpine" and container["ports"][0]["containerPort"] == 80
    rows = _lines(kubectl.ok("get", "deploy"))
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:4] == ["web", "0/3", "0", "0"]
    assert kubectl.ok("scale", "deployment", "web", "--replicas=5").strip() == "deployment.apps/web scaled"
    assert store.get("deployments", "default", "web")["spec"]["replicas"] == 5
    ssa = yaml.safe_dump(deployment("ssa", replicas=1))
    assert kubectl.ok("apply", "--server-side", "-f", "-", stdin=ssa).strip() == "deployment.apps/ssa serverside-applied"
    ssa2 = yaml.safe_dump(deployment("ssa", replicas=4))
    assert kubectl.ok("apply", "--server-side", "-f", "-", stdin=ssa2).strip() == \
        "deployment.apps/ssa serverside-applied"
    assert store.get("deployments", "default", "ssa")["spec"]["replicas"] == 4
    explain = kubectl.ok("explain", "deployment.spec")
    assert "KIND:       Deployment" in explain and "replicas\t<integer>" in explain


def test_get_pods_wide_jsonpath_custom_columns(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, _, kubectl = cluster
    store.create("pods", running_pod("netshoot-a", "netshoot", "192.168.1.113"))
    store.create("pods", running_pod("netshoot-b", "netshoot", "192.168.1.114"))
    store.create("pods", running_pod("other", "other", "192.168.1.115"))
    wide = kubectl.ok("get", "pod", "-o", "wide").splitlines()
    assert wide[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED",
                               "NODE", "READINESS", "GATES"]
    row = wide[1].split()
    assert row[:4] == ["netshoot-a", "1/1", "Running", "0"] and row[5:] == \
        ["192.168.1.113", NODE_NAME, "<none>", "<none>"]
    ip = kubectl.ok("get", "pod", "-l", "app=netshoot", "-o", "jsonpath={.items[0].status.podIP}")
    assert ip == "192.168.1.113"
    cols = _lines(kubectl.ok("get", "pod", "-l", "app in (netshoot)",
                             "-o=custom-columns=NAME:.metadata.name,IP:.status.podIP"))
    assert cols == [["NAME", "IP"], ["netshoot-a", "192.168.1.113"], ["netshoot-b", "192.168.1.114"]]
    one = _lines(kubectl.ok("get", "pod", "other"))
    assert one[0][0] == "NAME" and len(one) == 2 and one[1][0] == "other"
    labels = kubectl.ok("get", "pods", "-A", "--show-labels").splitlines()
    assert labels[0].split()[0] == "NAMESPACE" and "default" in labels[1] and "app=netshoot" in labels[1]


def test_events_and_describe(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, _, kubectl = cluster
    pod = store.create("pods", running_pod("described", "desc", "192.168.1.120"))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i, (reason, message) in enumerate((("Scheduled", f"Successfully assigned default/described to {NODE_NAME}"),
                                           ("Pulled", 'Container image "nicolaka/netshoot" already present on machine'))):
        store.create("events", {
            "metadata": {"name": f"described.18a2f0c1d2e3f4a{i}"}, "type": "Normal", "reason": reason,
            "message": message, "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "described",
                               "uid": pod["metadata"]["uid"], "apiVersion": "v1"},
            "source": {"component": "kubelet" if i else "default-scheduler", "host": NODE_NAME if i else ""}})
    store.create("events", {"metadata": {"name": "unrelated.1"}, "reason": "Other", "message": "not this pod",
                            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "other"}})
    rows = _lines(kubectl.ok("get", "events"))
    assert rows[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows[1][2:5] == ["Scheduled", "pod/described", "Successfully"]
    described = kubectl.ok("describe", "pod", "described")
    assert re.search(r"^Name:\s+described$", described, re.M) and re.search(r"^IP:\s+192.168.1.120$", described, re.M)
    assert re.search(r"^Status:\s+Running$", described, re.M)
    events = described.split("Events:")[1]
    assert "Successfully assigned default/described" in events and "not this pod" not in events


def test_delete_deployment_collects_replicasets_and_pods(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, _, kubectl = cluster
    d = store.create("deployments", deployment("doomed", app="doomed"))
    rs = store.create("replicasets", replicaset_for(d))
    for i in range(2):
        store.create("pods", running_pod(f"doomed-{i}", "doomed", f"192.168.1.{130 + i}", owner=rs))

    def kubelet(ev) -> None:    # finishes graceful deletions, as the lab's kubelet will
        if ev.object["metadata"].get("deletionTimestamp") and ev.type != "DELETED":
            store.finalize_delete("pods", "default", ev.object["metadata"]["name"])

    sub = store.subscribe(kubelet, "pods", resource_version=store.resource_version)
    try:
        assert kubectl.ok("delete", "deployment", "doomed").strip() == 'deployment.apps "doomed" deleted'
        assert store.try_get("replicasets", "default", rs["metadata"]["name"]) is None
        assert sub.wait_idle(5)
        assert store.list("pods", labels="app=doomed")[0] == []
        store.create("pods", running_pod("single", "single", "192.168.1.140"))
        assert kubectl.ok("delete", "pod", "single").strip() == 'pod "single" deleted'
    finally:
        sub.close()


def test_errors_not_found_invalid(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    _, _, kubectl = cluster
    res = kubectl.run("get", "pod", "nosuch")
    assert res.returncode == 1 and res.stderr.strip() == 'Error from server (NotFound): pods "nosuch" not found'
    res = kubectl.run("get", "deploy", "nosuch", "-o", "json")
    assert res.stderr.strip() == 'Error from server (NotFound): deployments.apps "nosuch" not found'
    bad = deployment("bad-deploy")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    res = kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(bad))
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        'The Deployment "bad-deploy" is invalid: ',
        '* spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        '`selector` does not match template `labels`',
        "* spec.template.spec.containers[0].image: Required value"]


def test_wrong_token_is_401(cluster: tuple[Store, ApiServer, Kubectl], tmp_path: Path) -> None:
    _, server, _ = cluster
    server.write_kubeconfig(tmp_path / "bad", token="not-the-token")
    res = Kubectl(tmp_path / "bad", tmp_path / "cache").run("get", "pods")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == \
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)"


def test_exec(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, _, kubectl = cluster
    store.create("pods", running_pod("exec-me", "exec", "192.168.1.150"))
    res = kubectl.run("exec", "exec-me", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert (res.returncode, res.stdout) == (3, "hi\n")
    assert res.stderr == "oops\ncommand terminated with exit code 3\n"
    assert kubectl.ok("exec", "-i", "exec-me", "--", "tr", "a-z", "A-Z", stdin="hello stdin\n") == "HELLO STDIN\n"
    res = kubectl.run("exec", "nosuch", "--", "true")
    assert res.stderr.strip() == 'Error from server (NotFound): pods "nosuch" not found'


def test_get_pods_watch_prints_new_rows(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, _, kubectl = cluster
    proc = kubectl.popen("get", "pods", "-w", "-l", "app=watched")
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        store.create("pods", running_pod("watched-1", "watched", "192.168.1.160"))
        seen = []
        deadline = time.monotonic() + 10
        while not any(line.startswith("watched-1") for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                pass
        assert any(line.split()[:3] == ["watched-1", "1/1", "Running"] for line in seen), seen
    finally:
        proc.kill()
        proc.wait(5)


def test_logs_container_choice_tail_and_refusals(cluster: tuple[Store, ApiServer, Kubectl], tmp_path: Path) -> None:
    """`kubectl logs` through the log subresource: kubectl's own default-container choice, --tail,
    and the API server's refusals for a container the pod lacks and for --previous."""
    store = cluster[0]
    asked: list[tuple[str, str, str]] = []

    def logs(namespace: str, pod: str, container: str):
        asked.append((namespace, pod, container))
        calls = iter(range(1, 1000))

        def read() -> str | None:                   # 3 lines, then one more per read, gone after 6
            n = next(calls)
            if n == 1:
                return "".join(f"{container} line {i}\n" for i in range(1, 4))
            return f"{container} line {n + 2}\n" if n <= 4 else None
        return read
    two = running_pod("logs-two", "web", "192.168.1.77")
    two["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    store.create("pods", two)
    store.create("pods", running_pod("logs-one", "one", "192.168.1.78"))
    with ApiServer(store, state_dir=tmp_path / "state", log_handler=logs) as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        kubectl = Kubectl(tmp_path / "kubeconfig", tmp_path / "cache")
        assert kubectl.ok("logs", "logs-one") == "one line 1\none line 2\none line 3\n"
        assert kubectl.ok("logs", "logs-one", "--tail=1") == "one line 3\n"
        assert kubectl.ok("logs", "logs-one", "--tail=0") == ""
        both = kubectl.run("logs", "logs-two")
        assert both.returncode == 0 and both.stdout.startswith("web line 1")
        assert 'Defaulted container "web" out of: web, sidecar' in both.stderr
        assert kubectl.ok("logs", "logs-two", "-c", "sidecar").startswith("sidecar line 1")
        wrong = kubectl.run("logs", "logs-two", "-c", "nope")
        assert wrong.returncode == 1
        assert "container nope is not valid for pod logs-two" in wrong.stderr
        previous = kubectl.run("logs", "logs-one", "--previous")
        assert previous.returncode == 1
        assert 'previous terminated container "one" in pod "logs-one" not found' in previous.stderr
        assert ("default", "logs-two", "sidecar") in asked
        # -f: the lines so far, then each new one as it comes, until the container is gone
        followed = kubectl.run("logs", "-f", "logs-one", "--tail=1", timeout=20)
        assert followed.returncode == 0, followed.stderr
        assert followed.stdout == "one line 3\none line 4\none line 5\none line 6\n"
    store.delete("pods", "default", "logs-two")
    store.delete("pods", "default", "logs-one")
