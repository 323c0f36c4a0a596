"""The kinds this API server serves and the discovery documents that announce them.

One ResourceType per resource (pods, deployments, eniconfigs, ...) holds everything the store,
the router and discovery need: group/version, kind, scope, verbs, shortNames, categories and
subresources. Discovery (aggregated v2/v2beta1 and legacy) is rendered from this table only, so a
kind added here is served and discoverable at once (kubectl-wire.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str = ""      # of the response kind when it differs from the parent's (Scale)
    version: str = ""


@dataclass(frozen=True)
class ResourceType:
    """A served resource: `plural` is also the store key (unique across all groups here)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    # metadata.generation is kept (and bumped on spec changes) for these kinds
    tracks_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: the resource as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, STATUS_VERBS)


def _scale() -> Subresource:
    return Subresource("scale", "Scale", STATUS_VERBS, group="autoscaling", version="v1")


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False,
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 short_names=("ns",),
                 subresources=(Subresource("finalize", "Namespace", ("update",)), _status("Namespace"))),
    ResourceType("", "v1", "nodes", "node", "Node", False, short_names=("no",),
                 subresources=(_status("Node"),)),
    ResourceType("", "v1", "pods", "pod", "Pod", True, short_names=("po",), categories=("all",),
                 subresources=(Subresource("exec", "PodExecOptions", ("create", "get")),
                               Subresource("log", "Pod", ("get",)),
                               _status("Pod"))),
    ResourceType("", "v1", "events", "event", "Event", True, short_names=("ev",)),
    ResourceType("", "v1", "services", "service", "Service", True, short_names=("svc",),
                 categories=("all",), subresources=(_status("Service"),)),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, short_names=("cm",)),
    ResourceType("apps", "v1", "deployments", "deployment", "Deployment", True,
                 short_names=("deploy",), categories=("all",),
                 subresources=(_scale(), _status("Deployment")), tracks_generation=True),
    ResourceType("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True,
                 short_names=("rs",), categories=("all",),
                 subresources=(_scale(), _status("ReplicaSet")), tracks_generation=True),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True,
                 short_names=("ds",), categories=("all",),
                 subresources=(_status("DaemonSet"),), tracks_generation=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    ResourceType("crd.k8s.amazonaws.com", "v1alpha1", "eniconfigs", "eniconfig", "ENIConfig", False),
)

BY_PLURAL: dict[str, ResourceType] = {r.plural: r for r in RESOURCES}
BY_KIND: dict[str, ResourceType] = {r.kind: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    rt = BY_PLURAL.get(plural)
    if rt is None or rt.group != group or rt.version != version:
        return None
    return rt


def resource(plural: str) -> ResourceType:
    """The ResourceType for a store key; KeyError names the unknown resource."""
    try:
        return BY_PLURAL[plural]
    except KeyError:
        raise KeyError(f"unknown resource {plural!r}") from None


def group_versions() -> list[tuple[str, str]]:
    """Served (group, version) pairs in a stable order, core first."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def in_group_version(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


# --- aggregated discovery (apidiscovery.k8s.io v2 / v2beta1) ---------------------------------

def _agg_resource(r: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    if r.subresources:
        out["subresources"] = [
            {"subresource": s.name,
             "responseKind": {"group": s.group if s.version else r.group,
                              "version": s.version or r.version, "kind": s.kind},
             "verbs": list(s.verbs)}
            for s in r.subresources]
    return out


def aggregated(core: bool, api_version: str = "v2") -> dict[str, Any]:
    """`/api` (core=True) or `/apis` as an APIGroupDiscoveryList of the given version."""
    items = []
    for group, version in group_versions():
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": version, "freshness": "Current",
                          "resources": [_agg_resource(r) for r in in_group_version(group, version)]}],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{api_version}",
            "metadata": {}, "items": items}


# --- legacy discovery ------------------------------------------------------------------------

def legacy_api(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def legacy_groups() -> dict[str, Any]:
    groups = []
    for group, version in group_versions():
        if not group:
            continue
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def legacy_group(group: str) -> dict[str, Any] | None:
    for g in legacy_groups()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def legacy_resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = in_group_version(group, version)
    if not served:
        return None
    resources: list[dict[str, Any]] = []
    for r in served:
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular,
                                 "namespaced": r.namespaced, "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for s in r.subresources:
            sub: dict[str, Any] = {"name": f"{r.plural}/{s.name}", "singularName": "",
                                   "namespaced": r.namespaced}
            if s.version:
                sub.update(group=s.group, version=s.version)
            sub.update(kind=s.kind, verbs=list(s.verbs))
            resources.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


__all__ = ["ResourceType", "Subresource", "RESOURCES", "BY_PLURAL", "BY_KIND", "lookup", "resource",
           "group_versions", "in_group_version", "aggregated", "legacy_api", "legacy_groups",
           "legacy_group", "legacy_resource_list"]
