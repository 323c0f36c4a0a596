"""`minieks explain pod` through the CLI against a real minieks API server (HTTPS, CA, token):
a pod no node has room for, and an unknown pod answered as kubectl answers it."""

import json

import pytest

from minieks import cli
from minieks.explain.gather import gather
from minieks.fabric.lab import state_dir
from minieks.kube.apiserver import ApiServer
from minieks.kube.store import Store
from tests.explain.fixtures import TOO_MANY, rfc3339

CLUSTER = "explaintest"


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIEKS_STATE_ROOT", str(tmp_path))
    state = state_dir(CLUSTER)
    state.mkdir(parents=True)
    store = Store(str(state / "kube.sqlite"))
    server = ApiServer(store, state_dir=state / "pki").start()
    server.write_kubeconfig(state / "kubeconfig", cluster=CLUSTER)
    (state / "endpoints.json").write_text(json.dumps({"api_url": server.url, "ec2_url": "http://127.0.0.1:9",
                                                      "kubeconfig": str(state / "kubeconfig")}))
    yield store
    server.stop()
    store.close()


def _full_cluster(store: Store) -> None:
    for n in (1, 2, 3):
        name = f"ip-192-168-{n}-10.ap-northeast-2.compute.internal"
        store.create("nodes", {"apiVersion": "v1", "kind": "Node",
                               "metadata": {"name": name, "labels": {"node.kubernetes.io/instance-type": "t3.medium"}},
                               "spec": {"providerID": f"aws:///ap-northeast-2a/i-0{n}"},
                               "status": {"capacity": {"pods": "17"}, "allocatable": {"pods": "17"},
                                          "conditions": [{"type": "Ready", "status": "True"}]}})
        for k in range(17):
            store.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": f"busy-{n}-{k}", "namespace": "default"},
                                  "spec": {"nodeName": name, "containers": [{"name": "c", "image": "nginx"}]},
                                  "status": {"phase": "Running"}}, namespace="default")
    pod = store.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": "web-1", "namespace": "default"},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                                "status": {"phase": "Pending"}}, namespace="default")
    store.create("events", {"apiVersion": "v1", "kind": "Event",
                            "metadata": {"name": "web-1.1", "namespace": "default"},
                            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1",
                                               "uid": pod["metadata"]["uid"]},
                            "reason": "FailedScheduling", "message": TOO_MANY, "type": "Warning", "count": 3,
                            "firstTimestamp": rfc3339(1.795e9), "lastTimestamp": rfc3339(1.795e9 + 9),
                            "source": {"component": "default-scheduler"}}, namespace="default")


def test_gather_reads_the_pod_its_events_and_every_nodes_pods(api):
    _full_cluster(api)
    facts = gather(CLUSTER, "default", "web-1")
    assert facts.pod["metadata"]["name"] == "web-1"
    assert [e["reason"] for e in facts.events] == ["FailedScheduling"]
    assert sorted((n.pods, n.max_pods, n.instance_type) for n in facts.nodes) == [(17, 17, "t3.medium")] * 3
    assert facts.types["t3.medium"].max_enis == 3 and facts.types["t3.medium"].max_pods_pd == 110
    assert facts.ipamd is None and facts.node is None


def test_explain_pod_says_max_pods(api, capsys):
    _full_cluster(api)
    assert cli.main(["explain", "pod", "web-1", "--cluster", CLUSTER]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Pod default/web-1 is Pending (not scheduled)")
    assert "Cause: max pods reached: 3/3 nodes are full" in out
    assert "max pods 17 on t3.medium = 3 ENIs × (6 − 1) + 2" in out
    assert cli.main(["explain", "pod", "web-1", "--cluster", CLUSTER, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["causes"][0]["code"] == "max-pods"


def test_an_unknown_pod_is_kubectls_not_found_and_exit_1(api, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explain", "pod", "nope", "-n", "kube-system", "--cluster", CLUSTER])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == 'Error from server (NotFound): pods "nope" not found\n'


def test_a_cluster_that_is_not_running_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIEKS_STATE_ROOT", str(tmp_path))
    assert cli.main(["explain", "pod", "x", "--cluster", "nosuch"]) == 2
    assert "no cluster named 'nosuch' is running here" in capsys.readouterr().err


def test_a_stopped_cluster_is_named_as_such(api, capsys, tmp_path):
    endpoints = json.loads((state_dir(CLUSTER) / "endpoints.json").read_text())
    endpoints["kubeconfig"] = str(state_dir(CLUSTER) / "kubeconfig")
    text = (state_dir(CLUSTER) / "kubeconfig").read_text()
    port = endpoints["api_url"].rsplit(":", 1)[1]
    (state_dir(CLUSTER) / "kubeconfig").write_text(text.replace(f"127.0.0.1:{port}", "127.0.0.1:9"))
    assert cli.main(["explain", "pod", "x", "--cluster", CLUSTER]) == 2
    err = capsys.readouterr().err
    assert f"cluster {CLUSTER} is not running" in err and "The connection to the server 127.0.0.1:9 was refused" in err
