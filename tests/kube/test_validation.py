"""Admission: 422 Invalid with causes worded as a real API server words them."""

from __future__ import annotations

import pytest

from minieks.kube import ApiError, Store

from .helpers import deployment, replicaset_for, running_pod


def test_deployment_two_causes(store: Store) -> None:
    bad = deployment("bad-deploy")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(ApiError) as exc:
        store.create("deployments", bad)
    status = exc.value.status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == (
        'Deployment.apps "bad-deploy" is invalid: [spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other"}: `selector` does not match template `labels`, '
        'spec.template.spec.containers[0].image: Required value]')
    assert status["details"] == {
        "name": "bad-deploy", "group": "apps", "kind": "Deployment",
        "causes": [{"reason": "FieldValueInvalid",
                    "message": 'Invalid value: map[string]string{"app":"other"}: `selector` does not match '
                               'template `labels`',
                    "field": "spec.template.metadata.labels"},
                   {"reason": "FieldValueRequired", "message": "Required value",
                    "field": "spec.template.spec.containers[0].image"}]}


def test_deployment_single_cause_and_others(store: Store) -> None:
    bad = deployment("neg")
    bad["spec"]["replicas"] = -1
    with pytest.raises(ApiError) as exc:
        store.create("deployments", bad)
    assert exc.value.message == ('Deployment.apps "neg" is invalid: spec.replicas: Invalid value: -1: '
                                 'must be greater than or equal to 0')
    with pytest.raises(ApiError) as exc:
        store.create("deployments", deployment("Bad_Name"))
    assert exc.value.causes[0].field == "metadata.name"
    assert exc.value.causes[0].message.startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
    no_containers = deployment("empty")
    no_containers["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(ApiError) as exc:
        store.create("deployments", no_containers)
    assert [c.field for c in exc.value.causes] == ["spec.template.spec.containers"]
    store.create("deployments", deployment("web"))
    with pytest.raises(ApiError) as exc:
        store.patch("deployments", "default", "web", {"spec": {"selector": {"matchLabels": {"app": "x"}},
                                                               "template": {"metadata": {"labels": {"app": "x"}}}}})
    assert exc.value.causes[0].message.endswith("field is immutable")


def test_pod_and_replicaset(store: Store) -> None:
    pod = running_pod("p", "web", "10.0.0.1")
    pod["spec"]["containers"] = [{"name": "a", "image": "x"}, {"name": "a"}, {"image": "y"}]
    with pytest.raises(ApiError) as exc:
        store.create("pods", pod)
    assert exc.value.message.startswith('Pod "p" is invalid: [')
    assert [(c.reason, c.field) for c in exc.value.causes] == [
        ("FieldValueDuplicate", "spec.containers[1].name"), ("FieldValueRequired", "spec.containers[1].image"),
        ("FieldValueRequired", "spec.containers[2].name")]
    d = store.create("deployments", deployment())
    rs = replicaset_for(d)
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "nginx"}
    with pytest.raises(ApiError) as exc:
        store.create("replicasets", rs)
    assert exc.value.code == 422 and exc.value.details["kind"] == "ReplicaSet"
    assert exc.value.causes[0].field == "spec.template.metadata.labels"
