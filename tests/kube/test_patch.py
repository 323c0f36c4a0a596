"""Patches: strategic merge (directives, merge keys), JSON merge patch, JSON patch, apply."""

from __future__ import annotations

import pytest

from minieks.kube import ApiError
from minieks.kube.patch import apply_patch, json_patch, merge_key, merge_patch, server_side_apply, \
    strategic_merge_patch

from .helpers import deployment


def _containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_kubectl_apply_container_change_keeps_other_fields() -> None:
    live = deployment()
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}\n", "keep": "me"}
    _containers(live).append({"name": "sidecar", "image": "busybox"})
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}\n"}},
             "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
                                            "containers": [{"image": "nginx:1.27-alpine", "name": "nginx"}]}}}}
    out = strategic_merge_patch(live, patch)
    assert [c["name"] for c in _containers(out)] == ["sidecar", "nginx"]
    nginx = _containers(out)[1]
    assert nginx == {"name": "nginx", "image": "nginx:1.27-alpine", "ports": [{"containerPort": 80}]}
    assert out["metadata"]["annotations"]["keep"] == "me"
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{\"new\":1}\n"
    assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]


def test_patch_delete_null_and_merge_keys() -> None:
    live = deployment()
    c = _containers(live)[0]
    c["env"] = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    c["ports"] = [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]
    c["volumeMounts"] = [{"name": "v", "mountPath": "/data"}]
    live["spec"]["template"]["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    live["metadata"]["annotations"] = {"gone": "x", "kept": "y"}
    patch = {"metadata": {"annotations": {"gone": None}},
             "spec": {"replicas": None, "template": {"spec": {
                 "tolerations": [{"key": "b", "operator": "Exists"}],
                 "containers": [{"name": "nginx",
                                 "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}],
                                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "volumeMounts": [{"mountPath": "/data", "readOnly": True}]},
                                {"name": "added", "image": "busybox", "args": ["x", None]}]}}}}
    out = strategic_merge_patch(live, patch)
    assert out["metadata"]["annotations"] == {"kept": "y"}
    assert "replicas" not in out["spec"]
    spec = out["spec"]["template"]["spec"]
    assert spec["tolerations"] == [{"key": "b", "operator": "Exists"}]       # no merge key: replaced
    nginx, added = spec["containers"]
    assert nginx["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert nginx["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]
    assert nginx["volumeMounts"] == [{"name": "v", "mountPath": "/data", "readOnly": True}]
    assert added["name"] == "added"
    delete_container = {"spec": {"template": {"spec": {"containers": [{"name": "added", "$patch": "delete"}]}}}}
    assert [c["name"] for c in _containers(strategic_merge_patch(out, delete_container))] == ["nginx"]


def test_replace_retain_and_primitive_directives() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
           "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    out = strategic_merge_patch(obj, {"metadata": {"labels": {"$patch": "replace", "c": "3"},
                                                   "finalizers": ["z"],
                                                   "$deleteFromPrimitiveList/finalizers": ["x"]},
                                      "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["metadata"]["labels"] == {"c": "3"}
    assert out["metadata"]["finalizers"] == ["y", "z"]
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    conds = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Init", "status": "True"}]}}
    merged = strategic_merge_patch(conds, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert merged["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "Init", "status": "True"}]
    with pytest.raises(ApiError):
        strategic_merge_patch(obj, {"$patch": "explode"})


def test_merge_keys_by_context() -> None:
    assert merge_key(("spec", "template", "spec", "containers", "ports")) == "containerPort"
    assert merge_key(("spec", "ports")) == "port"
    assert merge_key(("spec", "tolerations")) is None
    assert merge_key(("spec", "containers", "volumeMounts")) == "mountPath"


def test_json_merge_patch_rfc7386_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch(["a"], {"a": "b"}) == {"a": "b"}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}


def test_json_patch() -> None:
    doc = {"spec": {"replicas": 1, "list": [1, 2]}}
    out = json_patch(doc, [{"op": "replace", "path": "/spec/replicas", "value": 3},
                           {"op": "add", "path": "/spec/list/-", "value": 9},
                           {"op": "remove", "path": "/spec/list/0"}])
    assert out == {"spec": {"replicas": 3, "list": [2, 9]}} and doc["spec"]["replicas"] == 1
    with pytest.raises(ApiError) as exc:
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 2}])
    assert exc.value.code == 422
    with pytest.raises(ApiError) as exc:
        json_patch(doc, {"op": "add"})
    assert exc.value.code == 400


def test_server_side_apply_merges_by_key() -> None:
    live = deployment()
    live["metadata"].update(uid="u", resourceVersion="7")
    applied = deployment(replicas=4, image="nginx:1.28")
    applied["metadata"]["managedFields"] = [{"manager": "x"}]
    out = server_side_apply(live, applied)
    assert out["spec"]["replicas"] == 4 and _containers(out)[0]["image"] == "nginx:1.28"
    assert out["metadata"]["uid"] == "u" and "managedFields" not in out["metadata"]
    assert apply_patch(live, {"spec": {"replicas": 9}}, "application/merge-patch+json")["spec"]["replicas"] == 9
