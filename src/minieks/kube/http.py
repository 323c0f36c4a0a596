"""HTTP details of the Kubernetes API that are independent of any kind: media types in Accept
(aggregated discovery, Table, PartialObjectMetadata; matched exactly, kubectl-wire.md §2.5),
query flags, request bodies (JSON or YAML) and the server's /version document."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import bad_request

DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
TABLE_TYPE = "application/json;as=Table;v={v};g=meta.k8s.io"


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        return self.params.get(name)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Accept entries in the client's order (q values are not used by Kubernetes clients)."""
    out = []
    for entry in (header or "").split(","):
        parts = [p.strip() for p in entry.split(";")]
        if not parts[0]:
            continue
        params = {}
        for p in parts[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        out.append(MediaRange(parts[0].lower(), params))
    return out


def _json_like(m: MediaRange) -> bool:
    return m.type in ("application/json", "*/*", "application/*")


def discovery_version(accept: str | None) -> str | None:
    """"v2"/"v2beta1" if the first acceptable entry asks for aggregated discovery, else None
    (legacy discovery)."""
    for m in parse_accept(accept):
        if (m.type == "application/json" and m.param("g") == "apidiscovery.k8s.io"
                and m.param("as") == "APIGroupDiscoveryList" and m.param("v") in ("v2", "v2beta1")):
            return m.param("v")
        if _json_like(m) and not m.params:
            return None
    return None


def wanted_representation(accept: str | None) -> tuple[str, str]:
    """("Table"|"PartialObjectMetadata"|"json", version) from the first entry we can serve."""
    for m in parse_accept(accept):
        as_ = m.param("as")
        if m.type == "application/json" and as_ and m.param("g") == "meta.k8s.io" and m.param("v") in ("v1", "v1beta1"):
            if as_ == "Table":
                return "Table", m.param("v") or "v1"
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "PartialObjectMetadata", m.param("v") or "v1"
            continue
        if as_ or m.type == "application/vnd.kubernetes.protobuf":
            continue        # protobuf is never spoken: a later JSON entry is used
        if _json_like(m) or m.type == "application/yaml":
            return "json", "v1"
    return "json", "v1"


def flag(query: dict[str, list[str]], name: str, default: bool = False) -> bool:
    values = query.get(name)
    if not values:
        return default
    return values[-1].lower() in ("true", "1", "yes", "")


def first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """A JSON (or YAML) request body; 400 BadRequest if it does not parse."""
    if not raw.strip():
        return None
    ctype = (content_type or "").split(";")[0].strip().lower()
    try:
        return json.loads(raw)
    except ValueError as exc:
        if "yaml" not in ctype:
            raise bad_request(f"error decoding request body as JSON: {exc}") from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None


_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(.*)$")


def version_document(git_version: str) -> dict[str, str]:
    """/version for a gitVersion such as `v1.31.4-eks-2d5f260` (minor "31+", as EKS reports it,
    which makes kubectl's dispatcher run kubectl 1.31) or `v1.32.5` (minor "32")."""
    m = _VERSION_RE.match(git_version)
    if not m:
        raise ValueError(f"not a Kubernetes version: {git_version!r} (expected like v1.31.4-eks-2d5f260)")
    major, minor, _patch, suffix = m.groups()
    return {
        "major": major,
        "minor": minor + ("+" if suffix else ""),
        "gitVersion": git_version,
        "gitCommit": "3a1e1e3c2d93e4a91ad7b7c8b1c1b1b0d0f7a6a1",
        "gitTreeState": "clean",
        "buildDate": "2025-01-15T09:43:32Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
