"""Admission checks that make bad manifests fail as on a real cluster: 422 Invalid with causes.

The wording of causes follows the real API server (field path, `Required value`,
`Invalid value: <Go %#v>: reason`), because kubectl prints details.causes verbatim
(kubectl-wire.md §9.3). Only what users commonly get wrong is checked.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import Cause, invalid
from .resources import ResourceType
from .selectors import from_label_selector

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 r"validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def go_value(v: Any) -> str:
    """A value as Go's %#v prints it in validation messages."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v[k])}" for k in sorted(v))
        return "map[string]string{" + inner + "}"
    if v is None:
        return "map[string]string(nil)"
    return json.dumps(v, sort_keys=True)


def _label_selector_go(sel: dict[str, Any] | None) -> str:
    sel = sel or {}
    labels = sel.get("matchLabels")
    exprs = sel.get("matchExpressions")
    ml = go_value(labels) if labels else "map[string]string(nil)"
    me = "[]v1.LabelSelectorRequirement(nil)" if not exprs else f"[]v1.LabelSelectorRequirement{json.dumps(exprs)}"
    return f"v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}"


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), field)


def invalid_value(field: str, value: Any, detail: str, rendered: str | None = None) -> Cause:
    shown = rendered if rendered is not None else go_value(value)
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", field)


def _name_rule(rt: ResourceType) -> tuple[re.Pattern[str], str, int]:
    if rt.plural == "namespaces":
        return _LABEL_RE, LABEL_MSG, 63
    if rt.plural == "services":
        return _DNS1035_RE, DNS1035_MSG, 63
    return _SUBDOMAIN_RE, SUBDOMAIN_MSG, 253


def _check_meta(rt: ResourceType, obj: dict[str, Any], out: list[Cause]) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        out.append(required("metadata.name", "name or generateName is required"))
        return
    pattern, msg, limit = _name_rule(rt)
    if not isinstance(name, str) or not pattern.match(name):
        out.append(invalid_value("metadata.name", name, msg))
    elif len(name) > limit:
        out.append(invalid_value("metadata.name", name, f"must be no more than {limit} characters"))
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and (not isinstance(value, dict) or
                                  not all(isinstance(v, str) for v in value.values())):
            out.append(invalid_value(f"metadata.{key}", value, "values must be strings"))


def _check_pod_spec(spec: Any, path: str, out: list[Cause], restart_always: bool = False) -> None:
    if not isinstance(spec, dict):
        out.append(required(path))
        return
    containers = spec.get("containers")
    if not containers:
        out.append(required(f"{path}.containers"))
        containers = []
    seen: set[str] = set()
    for group, items in (("initContainers", spec.get("initContainers") or []), ("containers", containers)):
        for i, c in enumerate(items):
            cpath = f"{path}.{group}[{i}]"
            if not isinstance(c, dict):
                out.append(invalid_value(cpath, c, "must be an object"))
                continue
            name = c.get("name")
            if not name:
                out.append(required(f"{cpath}.name"))
            elif not isinstance(name, str) or not _LABEL_RE.match(name) or len(name) > 63:
                out.append(invalid_value(f"{cpath}.name", name, LABEL_MSG))
            elif name in seen:
                out.append(Cause("FieldValueDuplicate", f"Duplicate value: {go_value(name)}", f"{cpath}.name"))
            else:
                seen.add(name)
            if not c.get("image"):
                out.append(required(f"{cpath}.image"))
            for j, port in enumerate(c.get("ports") or []):
                ppath = f"{cpath}.ports[{j}].containerPort"
                cp = port.get("containerPort") if isinstance(port, dict) else None
                if cp is None:
                    out.append(required(ppath))
                elif not isinstance(cp, int) or not 1 <= cp <= 65535:
                    out.append(invalid_value(ppath, cp, "must be between 1 and 65535, inclusive"))
    policy = spec.get("restartPolicy")
    if restart_always and policy not in (None, "Always"):
        out.append(Cause("FieldValueNotSupported",
                         f'Unsupported value: {go_value(policy)}: supported values: "Always"',
                         f"{path}.restartPolicy"))


def _check_workload(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
                    out: list[Cause]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        out.append(required("spec"))
        return
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        out.append(invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    if selector is None:
        out.append(required("spec.selector"))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        out.append(invalid_value("spec.selector", selector, f"empty selector is invalid for {rt.singular}",
                                 _label_selector_go(selector)))
    elif old is not None and rt.plural != "replicasets" and (old.get("spec") or {}).get("selector") != selector:
        out.append(invalid_value("spec.selector", selector, "field is immutable", _label_selector_go(selector)))
    template = spec.get("template")
    if not isinstance(template, dict):
        out.append(required("spec.template"))
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and (selector.get("matchLabels") or selector.get("matchExpressions")):
        try:
            matches = from_label_selector(selector).matches(labels)
        except Exception:
            matches = False
        if not matches:
            out.append(invalid_value("spec.template.metadata.labels", labels,
                                     "`selector` does not match template `labels`"))
    _check_pod_spec(template.get("spec"), "spec.template.spec", out, restart_always=True)


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Raise a 422 ApiError listing every problem found in `obj` (old is set on update)."""
    causes: list[Cause] = []
    _check_meta(rt, obj, causes)
    if rt.plural == "pods":
        _check_pod_spec(obj.get("spec"), "spec", causes)
    elif rt.plural in ("deployments", "replicasets", "daemonsets"):
        _check_workload(rt, obj, old, causes)
    if causes:
        name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
        raise invalid(rt.kind, rt.group, name, causes)
