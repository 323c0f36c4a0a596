"""End to end: the `kubernetes` Python client (strict response models) against the API server."""

from __future__ import annotations

import pytest

from minieks.kube import ApiServer, Store

from .helpers import Kubectl, deployment, running_pod

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.stream import stream  # noqa: E402


@pytest.fixture(scope="module")
def api(cluster: tuple[Store, ApiServer, Kubectl]) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(str(cluster[2].kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        yield api_client


def test_list_and_read_pods_strictly(cluster: tuple[Store, ApiServer, Kubectl], api: client.ApiClient) -> None:
    store = cluster[0]
    store.create("pods", running_pod("py-a", "py", "192.168.1.10"))
    store.create("pods", running_pod("py-b", "py", "192.168.1.11"))
    store.create("pods", running_pod("not-py", "other", "192.168.1.12"))
    v1 = client.CoreV1Api(api)
    pods = v1.list_namespaced_pod("default", label_selector="app=py")
    assert [p.metadata.name for p in pods.items] == ["py-a", "py-b"]
    assert int(pods.metadata.resource_version) == store.resource_version
    pod = v1.read_namespaced_pod("py-a", "default")
    status = pod.status.container_statuses[0]
    assert (status.ready, status.restart_count, pod.status.pod_ip) == (True, 0, "192.168.1.10")
    assert pod.spec.containers[0].image_pull_policy == "Always"          # defaulted: no tag
    node = v1.list_node().items[0]
    assert node.status.node_info.kubelet_version == "v1.31.4-eks-aeac579"
    assert [ns.metadata.name for ns in v1.list_namespace().items][:2] == ["default", "kube-node-lease"]


def test_deployments_and_scale(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = deployment("py-deploy", replicas=1, app="py-deploy")
    del body["metadata"]["labels"]
    created = apps.create_namespaced_deployment("default", body)
    assert (created.metadata.namespace, created.metadata.generation, created.spec.replicas) == ("default", 1, 1)
    with pytest.raises(client.ApiException) as exc:
        apps.create_namespaced_deployment("default", body)
    assert exc.value.status == 409
    scale = apps.patch_namespaced_deployment_scale("py-deploy", "default", {"spec": {"replicas": 5}})
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (5, 0, "app=py-deploy")
    again = apps.read_namespaced_deployment_scale("py-deploy", "default")
    assert again.spec.replicas == 5
    assert apps.read_namespaced_deployment("py-deploy", "default").metadata.generation == 2
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment_scale("py-deploy", "default", {"spec": {"replicas": -1}})
    assert exc.value.status == 422
    gone = apps.delete_namespaced_deployment("py-deploy", "default")
    status = gone.get("status") if isinstance(gone, dict) else gone.status   # client versions differ
    assert status == "Success"
    with pytest.raises(client.ApiException) as exc:
        apps.read_namespaced_deployment("py-deploy", "default")
    assert exc.value.status == 404


def test_watch_stream(cluster: tuple[Store, ApiServer, Kubectl], api: client.ApiClient) -> None:
    store = cluster[0]
    v1 = client.CoreV1Api(api)
    listed = v1.list_namespaced_pod("default", label_selector="app=watch")
    store.create("pods", running_pod("watch-1", "watch", "192.168.1.20"))
    w = watch.Watch()
    events = []
    for ev in w.stream(v1.list_namespaced_pod, "default", label_selector="app=watch",
                       resource_version=listed.metadata.resource_version, timeout_seconds=2):
        events.append((ev["type"], ev["object"].metadata.name))
        w.stop()
    assert events == [("ADDED", "watch-1")]


def test_stream_exec(cluster: tuple[Store, ApiServer, Kubectl], api: client.ApiClient) -> None:
    cluster[0].create("pods", running_pod("py-exec", "py-exec", "192.168.1.30"))
    v1 = client.CoreV1Api(api)
    out = stream(v1.connect_get_namespaced_pod_exec, "py-exec", "default", command=["echo", "hello"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "hello\n"
    resp = stream(v1.connect_get_namespaced_pod_exec, "py-exec", "default",
                  command=["sh", "-c", "echo hi; exit 3"], stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    resp.run_forever(timeout=10)
    assert resp.read_stdout() == "hi\n" and resp.returncode == 3
