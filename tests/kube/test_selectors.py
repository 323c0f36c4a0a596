"""Label and field selectors: syntax, matching, errors, formatting."""

from __future__ import annotations

import pytest

from minieks.kube import ApiError
from minieks.kube.selectors import format_label_selector, from_label_selector, parse_fields, parse_labels

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize("text,matches", [
    ("", True), ("app=web", True), ("app==web", True), ("app!=web", False), ("app!=db", True),
    ("missing!=x", True), ("app in (web,db)", True), ("app in (db)", False), ("app notin (db, cache)", True),
    ("missing notin (x)", True), ("tier", True), ("!tier", False), ("!missing", True),
    ("app=web,tier=front", True), ("app=web,tier=back", False), ("  app = web , env in ( prod ) ", True),
])
def test_label_selector_matching(text: str, matches: bool) -> None:
    assert parse_labels(text).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["=web", "app in web", "app in (web", "a b", "app=web,", "bad key!=x", "app=@"])
def test_bad_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_labels(bad)
    assert exc.value.code == 400 and exc.value.reason == "BadRequest"


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "n1", "hostNetwork": False},
           "status": {"phase": "Running"}}
    assert parse_fields("metadata.name=p,status.phase=Running", "pods").matches(pod)
    assert parse_fields("spec.nodeName!=n1", "pods").matches(pod) is False
    assert parse_fields("spec.nodeName==n1,spec.hostNetwork=false", "pods").matches(pod)
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default",
                                                           "uid": "u-1"}, "type": "Normal", "reason": "Pulled",
             "source": {"component": "kubelet"}}
    sel = parse_fields("involvedObject.name=p,involvedObject.namespace=default,involvedObject.uid=u-1", "events")
    assert sel.matches(event)
    assert parse_fields("type=Warning", "events").matches(event) is False
    assert parse_fields("source=kubelet,reason=Pulled,involvedObject.kind=Pod", "events").matches(event)
    assert parse_fields("metadata.name=a\\,b", "pods").requirements[0].value == "a,b"
    for bad, resource in (("spec.nodeName=x", "configmaps"), ("nonsense", "pods")):
        with pytest.raises(ApiError) as exc:
            parse_fields(bad, resource)
        assert exc.value.code == 400


def test_label_selector_objects_and_formatting() -> None:
    sel = {"matchLabels": {"app": "nginx"},
           "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                {"key": "legacy", "operator": "DoesNotExist"}]}
    assert from_label_selector(sel).matches({"app": "nginx", "env": "dev"})
    assert not from_label_selector(sel).matches({"app": "nginx", "env": "dev", "legacy": "1"})
    assert format_label_selector(sel) == "app=nginx,env in (dev,prod),!legacy"   # sorted by key
    assert format_label_selector({"matchLabels": {"app": "nginx"}}) == "app=nginx"
    assert format_label_selector(None) == "<none>"
