"""The HTTPS front end on the wire: auth, discovery media types, OpenAPI, Tables, watches, TLS files."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from minieks.kube import ApiServer, Store
from minieks.kube.http import discovery_version, version_document, wanted_representation

from .helpers import Kubectl, running_pod

AGG = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


class Client:
    """A keep-alive HTTPS client that trusts the server's CA."""

    def __init__(self, server: ApiServer, token: str | None = None):
        ctx = ssl.create_default_context(cadata=server.ca_pem.decode())
        self.conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
        self.token = server.token if token is None else token

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=h)
        resp = self.conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()

    def json(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        code, _, raw = self.request(method, path, body, {k.replace("_", "-"): v for k, v in headers.items()})
        return code, json.loads(raw)


@pytest.fixture(scope="module")
def wire(cluster: tuple[Store, ApiServer, Kubectl]) -> Client:
    return Client(cluster[1])


def test_every_request_needs_the_token(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    server = cluster[1]
    for path in ("/version", "/api", "/api/v1/namespaces/default/pods"):
        code, body = Client(server, token="wrong").json("GET", path)
        assert code == 401 and body["reason"] == "Unauthorized" and body["message"] == "Unauthorized"
    code, body = Client(server).json("GET", "/version")
    assert code == 200 and body["minor"] == "31+" and body["gitVersion"] == "v1.31.4-eks-2d5f260"


def test_tls_and_token_files(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    state = cluster[1].state_dir
    for name in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "token"):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name
    kubeconfig = yaml.safe_load(cluster[2].kubeconfig.read_text())
    assert stat.S_IMODE(os.stat(cluster[2].kubeconfig).st_mode) == 0o600
    assert kubeconfig["current-context"] == "minieks-admin@minieks.ap-northeast-2.eksctl.io"
    assert kubeconfig["clusters"][0]["name"] == "minieks.ap-northeast-2.eksctl.io"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == cluster[1].url


def test_discovery_media_types(wire: Client) -> None:
    for v in ("v2", "v2beta1"):
        code, headers, raw = wire.request("GET", "/apis", headers={"Accept": f"{AGG.format(v=v)},application/json"})
        assert code == 200 and headers["content-type"] == AGG.format(v=v)
        body = json.loads(raw)
        assert body["apiVersion"] == f"apidiscovery.k8s.io/{v}"
        groups = {i["metadata"]["name"]: i for i in body["items"]}
        apps = {r["resource"]: r for r in groups["apps"]["versions"][0]["resources"]}
        assert apps["deployments"]["shortNames"] == ["deploy"]
        scale = next(s for s in apps["deployments"]["subresources"] if s["subresource"] == "scale")
        assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        eni = groups["crd.k8s.amazonaws.com"]["versions"][0]["resources"][0]
        assert (eni["resource"], eni["scope"], eni["responseKind"]["kind"]) == ("eniconfigs", "Cluster", "ENIConfig")
    # kubectl 1.29 asks for v2beta1 only: v=v2beta1 must not be mistaken for v=v2
    assert discovery_version(f"{AGG.format(v='v2beta1')},application/json") == "v2beta1"
    code, headers, raw = wire.request("GET", "/api", headers={"Accept": "application/json, */*"})
    assert headers["content-type"] == "application/json" and json.loads(raw)["kind"] == "APIVersions"
    code, legacy = wire.json("GET", "/api/v1")
    names = {r["name"]: r for r in legacy["resources"]}
    assert names["pods"]["shortNames"] == ["po"] and names["pods/exec"]["kind"] == "PodExecOptions"
    code, legacy = wire.json("GET", "/apis/apps/v1")
    assert {"name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
            "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]} in legacy["resources"]
    assert wire.json("GET", "/apis")[1]["kind"] == "APIGroupList"


def test_openapi(wire: Client) -> None:
    code, index = wire.json("GET", "/openapi/v3")
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1",
                                   "apis/crd.k8s.amazonaws.com/v1alpha1"}
    code, doc = wire.json("GET", index["paths"]["apis/apps/v1"]["serverRelativeURL"])
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    schema = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert wire.request("GET", "/openapi/v2")[0] == 404


def test_tables_and_representations(cluster: tuple[Store, ApiServer, Kubectl], wire: Client) -> None:
    store = cluster[0]
    store.create("pods", running_pod("tbl", "tbl", "10.1.1.1"))
    code, headers, raw = wire.request("GET", "/api/v1/namespaces/default/pods/tbl", headers={"Accept": TABLE})
    table = json.loads(raw)
    assert headers["content-type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
    assert table["kind"] == "Table" and len(table["rows"]) == 1 and table["rows"][0]["cells"][0] == "tbl"
    code, table = wire.json("GET", "/api/v1/pods?labelSelector=app%3Dtbl&includeObject=Object", Accept=TABLE)
    assert table["rows"][0]["object"]["kind"] == "Pod"
    code, plain = wire.json("GET", "/api/v1/namespaces/default/pods/tbl",
                            Accept="application/vnd.kubernetes.protobuf,application/json")
    assert code == 200 and plain["kind"] == "Pod"
    assert wanted_representation("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io") == \
        ("PartialObjectMetadata", "v1")
    code, bad = wire.json("GET", "/api/v1/namespaces/default/pods?labelSelector=app+in+x")
    assert code == 400 and bad["reason"] == "BadRequest"
    code, missing = wire.json("GET", "/apis/apps/v1/namespaces/default/deployments/nosuch")
    assert (code, missing["message"], missing["details"]) == (
        404, 'deployments.apps "nosuch" not found', {"name": "nosuch", "group": "apps", "kind": "deployments"})
    assert wire.json("GET", "/apis/nosuch.io/v1/things")[0] == 404


def test_status_scale_and_patch_types(cluster: tuple[Store, ApiServer, Kubectl], wire: Client) -> None:
    store = cluster[0]
    store.create("pods", running_pod("st", "st", "10.1.1.2"))
    base = "/api/v1/namespaces/default/pods/st"
    code, pod = wire.json("PATCH", base, {"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "1"}}},
                          Content_Type="application/merge-patch+json")
    assert code == 200 and pod["status"]["phase"] == "Running" and pod["metadata"]["labels"]["x"] == "1"
    code, pod = wire.json("PATCH", base + "/status", [{"op": "replace", "path": "/status/phase", "value": "Failed"}],
                          Content_Type="application/json-patch+json")
    assert pod["status"]["phase"] == "Failed"
    code, err = wire.json("PATCH", base, {"a": 1}, Content_Type="text/plain")
    assert code == 415
    code, err = wire.json("PATCH", base, b"{not json", Content_Type="application/merge-patch+json")
    assert code == 400


def _watch_lines(server: ApiServer, path: str, accept: str, count: int) -> tuple[socket.socket, list[dict]]:
    ctx = ssl.create_default_context(cadata=server.ca_pem.decode())
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                 f"Accept: {accept}\r\n\r\n".encode())
    buf = b""
    events: list[dict] = []
    deadline = time.monotonic() + 5
    while len(events) < count and time.monotonic() < deadline:
        buf += sock.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        events = []
        rest = body
        while b"\r\n" in rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0 or len(rest) < size + 2:
                break
            events.append(json.loads(rest[:size]))
            rest = rest[size + 2:]
    return sock, events


def test_watch_wire_format(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    store, server, _ = cluster
    store.create("configmaps", {"metadata": {"name": "w1"}})
    rv = store.resource_version
    store.create("configmaps", {"metadata": {"name": "w2"}})
    store.create("configmaps", {"metadata": {"name": "w3"}})
    sock, events = _watch_lines(server, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}",
                                TABLE, 2)
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    assert "columnDefinitions" in events[0]["object"] and "columnDefinitions" not in events[1]["object"]
    assert [e["object"]["rows"][0]["cells"][0] for e in events] == ["w2", "w3"]
    watches_before = len(store._watches)
    sock.close()
    deadline = time.monotonic() + 3
    while len(store._watches) >= watches_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(store._watches) < watches_before, "the server noticed the closed watch"
    sock, events = _watch_lines(server, "/api/v1/namespaces/default/configmaps?watch=1&fieldSelector="
                                        "metadata.name%3Dw1", "application/json", 1)
    assert events == [{"type": "ADDED", "object": store.get("configmaps", "default", "w1")}]
    sock.close()


def test_watch_too_old_is_an_error_event(tmp_path: Path) -> None:
    store = Store(history=2)
    start = store.resource_version
    for i in range(4):
        store.create("configmaps", {"metadata": {"name": f"c{i}"}})
    with ApiServer(store, state_dir=tmp_path) as server:
        sock, events = _watch_lines(server, f"/api/v1/configmaps?watch=true&resourceVersion={start}",
                                    "application/json", 1)
        sock.close()
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
    store.close()


def test_auth_disabled_plain_http(tmp_path: Path) -> None:
    store = Store()
    with ApiServer(store, state_dir=tmp_path, auth=False, tls=False, version="v1.32.5") as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/version")
        body = json.loads(conn.getresponse().read())
        assert body["minor"] == "32" and server.url.startswith("http://")
    store.close()


def test_version_document() -> None:
    assert version_document("v1.31.4-eks-2d5f260")["minor"] == "31+"
    assert version_document("v1.29.0")["minor"] == "29"
    with pytest.raises(ValueError):
        version_document("1.31")


def test_concurrent_writers_and_a_watch(cluster: tuple[Store, ApiServer, Kubectl]) -> None:
    """Parallel keep-alive connections write; one watch sees every change once, in version order."""
    import threading
    store, server, _ = cluster
    store.create("namespaces", {"metadata": {"name": "busy"}})
    start = store.resource_version
    errors: list[str] = []

    def writer(prefix: str) -> None:
        client = Client(server)
        for i in range(25):
            code, body = client.json("POST", "/api/v1/namespaces/busy/configmaps",
                                     {"metadata": {"name": f"{prefix}-{i}"}, "data": {"i": str(i)}})
            if code != 201:
                errors.append(str(body))
            code, body = client.json("PATCH", f"/api/v1/namespaces/busy/configmaps/{prefix}-{i}",
                                     {"data": {"patched": "yes"}}, Content_Type="application/merge-patch+json")
            if code != 200:
                errors.append(str(body))

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sock, events = _watch_lines(server, f"/api/v1/namespaces/busy/configmaps?watch=true&resourceVersion={start}",
                                "application/json", 200)
    sock.close()
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert len(events) == 200 and versions == sorted(versions) and len(set(versions)) == 200
    assert sorted(e["type"] for e in events) == ["ADDED"] * 100 + ["MODIFIED"] * 100


def test_scale_subresource_put_and_replicasets(cluster: tuple[Store, ApiServer, Kubectl], wire: Client) -> None:
    from .helpers import deployment, replicaset_for
    store = cluster[0]
    d = store.create("deployments", deployment("scaled", app="scaled"))
    rs = store.create("replicasets", replicaset_for(d))
    base = "/apis/apps/v1/namespaces/default/deployments/scaled/scale"
    code, scale = wire.json("GET", base)
    assert scale == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                     "metadata": {k: d["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                                "creationTimestamp")},
                     "spec": {"replicas": 2}, "status": {"replicas": 0, "selector": "app=scaled"}}
    scale["spec"]["replicas"] = 4
    code, put = wire.json("PUT", base, scale)
    assert code == 200 and put["spec"]["replicas"] == 4
    code, stale = wire.json("PUT", base, scale)
    assert code == 409 and stale["reason"] == "Conflict"
    rs_path = f"/apis/apps/v1/namespaces/default/replicasets/{rs['metadata']['name']}/scale"
    code, out = wire.json("PATCH", rs_path, {"spec": {"replicas": 3}},
                          Content_Type="application/strategic-merge-patch+json")
    assert code == 200 and store.get("replicasets", "default", rs["metadata"]["name"])["spec"]["replicas"] == 3
    assert store.get("deployments", "default", "scaled")["metadata"]["generation"] == 2
