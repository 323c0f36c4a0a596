"""OpenAPI v3 documents: the index at /openapi/v3 and one document per served group version.

kubectl needs them for `apply` (server-side field validation is detected from a PATCH operation
carrying a `fieldValidation` parameter, kubectl-wire.md §5.4) and for `explain` (schemas found via
x-kubernetes-group-version-kind). PATCH bodies do NOT list strategic-merge-patch, so kubectl
computes strategic patches from its built-in types rather than from these schemas (§5.3).

Schemas come from the `kubernetes` Python client's model classes (types, JSON names, field
descriptions) when that package is importable; otherwise each kind gets a minimal schema.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from .resources import ResourceType, group_versions, in_group_version

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_META_TYPES = {"ObjectMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
               "ManagedFieldsEntry", "ListMeta", "Status", "StatusDetails", "StatusCause", "Condition",
               "DeleteOptions", "Preconditions"}
_KIND_PACKAGES = {"": "io.k8s.api.core.v1.", "apps": "io.k8s.api.apps.v1.",
                  "coordination.k8s.io": "io.k8s.api.coordination.v1."}
_VERSION_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)*V\d+(?:alpha\d+|beta\d+)?")
PATCH_REF = META + "Patch"


def _short(model_name: str) -> str:
    m = _VERSION_PREFIX.match(model_name)
    return model_name[m.end():] if m and m.end() < len(model_name) else model_name


def schema_name(model_name: str, group: str = "") -> str:
    """`V1DeploymentSpec` → `io.k8s.api.apps.v1.DeploymentSpec`-like names (last segment = type)."""
    short = _short(model_name)
    if short in _META_TYPES:
        return META + short
    return _KIND_PACKAGES.get(group, "io.k8s.api.core.v1.") + short


def _models() -> Any | None:
    try:
        import kubernetes.client.models as models  # optional: a test dependency, richer explain
    except Exception:  # noqa: BLE001 - any import problem means "minimal schemas"
        return None
    return models


def _class_description(cls: Any) -> str:
    doc = (cls.__doc__ or "").strip()
    if not doc or doc.startswith("NOTE: This class is auto generated"):
        return ""
    return re.split(r"\n\s*Attributes:", doc)[0].strip()


def _field_description(cls: Any, attr: str) -> str:
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict) and attr in fields:
        return fields[attr].description or ""
    prop = getattr(cls, attr, None)
    doc = getattr(prop, "__doc__", "") or ""
    parts = [p.strip() for p in doc.split("\n\n")]
    text = parts[1] if len(parts) > 1 else ""
    return re.sub(r"\s*# noqa: E501", "", text).strip()


def _field_required(cls: Any, attr: str) -> bool:
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict) and attr in fields:
        try:
            return bool(fields[attr].is_required())
        except Exception:  # noqa: BLE001
            return False
    return False


_LIST = re.compile(r"^(?:List\[|list\[)(.*)\]$")
_DICT = re.compile(r"^(?:Dict\[str, |dict\(str, )(.*)[\])]$")
_SCALARS = {"str": {"type": "string"}, "int": {"type": "integer", "format": "int32"},
            "bool": {"type": "boolean"}, "float": {"type": "number", "format": "double"},
            "datetime": {"type": "string", "format": "date-time"}, "date": {"type": "string", "format": "date"},
            "bytes": {"type": "string", "format": "byte"}, "object": {"type": "object"}}


class _SchemaBuilder:
    """Walks model classes from the served kinds and emits components.schemas."""

    def __init__(self, models: Any):
        self.models = models
        self.schemas: dict[str, Any] = {}
        self.kind_of_group: dict[str, str] = {}    # group -> kind being walked (names its own types)

    def type_schema(self, type_name: str, group: str) -> dict[str, Any]:
        m = _LIST.match(type_name)
        if m:
            return {"type": "array", "items": self.type_schema(m.group(1), group)}
        m = _DICT.match(type_name)
        if m:
            return {"type": "object", "additionalProperties": self.type_schema(m.group(1), group)}
        if type_name in _SCALARS:
            return dict(_SCALARS[type_name])
        cls = getattr(self.models, type_name, None)
        if cls is None or not hasattr(cls, "openapi_types"):
            return {"type": "object"}
        kind = self.kind_of_group.get(group, "")
        name = self.model(cls, group if kind and kind in _short(cls.__name__) else "")
        return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], "default": {}}

    def model(self, cls: Any, group: str, gvk: dict[str, str] | None = None) -> str:
        name = schema_name(cls.__name__, group)
        if name in self.schemas:
            return name
        schema: dict[str, Any] = {"type": "object", "description": _class_description(cls)}
        self.schemas[name] = schema
        props: dict[str, Any] = {}
        required = []
        for attr, type_name in cls.openapi_types.items():
            json_name = cls.attribute_map.get(attr, attr)
            prop = self.type_schema(type_name, group)
            desc = _field_description(cls, attr)
            if desc:
                prop["description"] = desc
            props[json_name] = prop
            if _field_required(cls, attr):
                required.append(json_name)
        schema["properties"] = props
        if required:
            schema["required"] = required
        if gvk:
            schema["x-kubernetes-group-version-kind"] = [gvk]
        return name


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _minimal_kind(rt: ResourceType) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{rt.kind} ({rt.api_version}), as served by minieks.",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this "
                                                            "representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource "
                                                      "this object represents."},
            "metadata": {"allOf": [{"$ref": f"#/components/schemas/{META}ObjectMeta"}], "default": {},
                         "description": "Standard object's metadata."},
            "spec": {"type": "object", "description": f"Specification of the desired behavior of the {rt.kind}."},
            "status": {"type": "object", "description": f"Most recently observed status of the {rt.kind}."},
        },
        "x-kubernetes-group-version-kind": [_gvk(rt)],
    }


_MINIMAL_META = {"type": "object", "description": "ObjectMeta is metadata that all persisted resources must have.",
                 "properties": {"name": {"type": "string", "description": "Name must be unique within a namespace."},
                                "namespace": {"type": "string", "description": "Namespace defines the space within "
                                                                               "which each name must be unique."},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"},
                                           "description": "Map of string keys and values."},
                                "annotations": {"type": "object", "additionalProperties": {"type": "string"},
                                                "description": "Annotations is an unstructured key value map."}}}


def _eniconfig_schema(rt: ResourceType) -> dict[str, Any]:
    schema = _minimal_kind(rt)
    schema["description"] = ("ENIConfig is the Schema for the eniconfigs API of the Amazon VPC CNI: the subnet "
                             "and security groups of secondary ENIs (custom networking).")
    schema["properties"]["spec"] = {
        "type": "object", "description": "ENIConfigSpec defines the desired state of ENIConfig",
        "properties": {"securityGroups": {"type": "array", "items": {"type": "string"},
                                          "description": "Security groups of the ENIs."},
                       "subnet": {"type": "string", "description": "Subnet of the ENIs."}}}
    schema["properties"].pop("status")
    return schema


def _paths(rt: ResourceType, kind_ref: str) -> dict[str, Any]:
    prefix = "/api/v1" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    ref = {"$ref": f"#/components/schemas/{kind_ref}"}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    gvk = _gvk(rt)
    query = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
             for n in ("dryRun", "fieldManager", "fieldValidation")]

    def op(action: str, **extra: Any) -> dict[str, Any]:
        return {"operationId": f"{action}{rt.kind}", "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk, "responses": ok, **extra}

    patch_body = {"content": {t: {"schema": {"$ref": f"#/components/schemas/{PATCH_REF}"}}
                              for t in ("application/json-patch+json", "application/merge-patch+json",
                                        "application/apply-patch+yaml")}, "required": True}
    body = {"content": {"application/json": {"schema": ref}}, "required": True}
    force = {"name": "force", "in": "query", "schema": {"type": "boolean"}, "uniqueItems": True}
    return {
        base: {"get": op("list"), "post": op("post", parameters=query, requestBody=body)},
        f"{base}/{{name}}": {
            "get": op("get"), "put": op("put", parameters=query, requestBody=body),
            "patch": op("patch", parameters=query + [force], requestBody=patch_body),
            "delete": op("delete"),
        },
    }


def _build(group: str, version: str) -> dict[str, Any]:
    models = _models()
    builder = _SchemaBuilder(models) if models is not None else None
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for rt in in_group_version(group, version):
        cls = getattr(models, f"V1{rt.kind}", None) if models is not None and rt.version == "v1" else None
        if builder is not None and cls is not None and hasattr(cls, "openapi_types"):
            builder.kind_of_group[rt.group] = rt.kind
            ref = builder.model(cls, rt.group, _gvk(rt))
        else:
            ref = ("io.k8s.api.core.v1." if not rt.group else f"{rt.group}.{rt.version}.") + rt.kind
            schemas[ref] = _eniconfig_schema(rt) if rt.plural == "eniconfigs" else _minimal_kind(rt)
        paths.update(_paths(rt, ref))
    if builder is not None:
        schemas.update(builder.schemas)
    schemas.setdefault(META + "ObjectMeta", _MINIMAL_META)
    schemas[PATCH_REF] = {"type": "object", "description": "Patch is provided to give a concrete name and type "
                                                           "to the Kubernetes PATCH request body."}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths, "components": {"schemas": schemas}}


def gv_path(group: str, version: str) -> str:
    return "api/v1" if not group else f"apis/{group}/{version}"


@functools.lru_cache(maxsize=None)
def document(group: str, version: str) -> bytes:
    """The serialized per-group-version document (built once per process)."""
    return json.dumps(_build(group, version), separators=(",", ":")).encode()


def doc_hash(group: str, version: str) -> str:
    return hashlib.sha512(document(group, version)).hexdigest().upper()


def index() -> dict[str, Any]:
    """/openapi/v3: every served group version with its document's URL (hash changes with it)."""
    return {"paths": {gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{gv_path(g, v)}?hash={doc_hash(g, v)}"}
                      for g, v in group_versions()}}


def lookup(path: str) -> tuple[str, str] | None:
    """`api/v1` or `apis/apps/v1` (from /openapi/v3/<path>) → (group, version) if served."""
    for g, v in group_versions():
        if gv_path(g, v) == path.strip("/"):
            return g, v
    return None
