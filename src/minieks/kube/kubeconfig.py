"""kubeconfig files for kubectl and the Python client, named as eksctl names EKS contexts.

Naming (eksctl's): cluster `<cluster>.<region>.eksctl.io`, user and context
`<user>@<cluster>.<region>.eksctl.io`. The file embeds the CA (certificate-authority-data) and a
bearer token and is written 0600, as it holds a credential.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from .tls import write_private


@dataclass(frozen=True)
class KubeconfigNames:
    cluster: str
    user: str
    context: str


def eks_names(cluster: str, region: str, user: str = "minieks-admin") -> KubeconfigNames:
    """eksctl's names: `<cluster>.<region>.eksctl.io` and `<user>@<cluster>.<region>.eksctl.io`."""
    cluster_entry = f"{cluster}.{region}.eksctl.io"
    user_entry = f"{user}@{cluster_entry}"
    return KubeconfigNames(cluster_entry, user_entry, user_entry)


def render(server: str, ca_pem: bytes, token: str, names: KubeconfigNames, namespace: str | None = None) -> str:
    context: dict[str, str] = {"cluster": names.cluster, "user": names.user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": names.cluster, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": [{"name": names.context, "context": context}],
        "current-context": names.context,
        "users": [{"name": names.user, "user": {"token": token}}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(path: str | os.PathLike[str], *, server: str, ca_pem: bytes, token: str,
                     cluster: str = "minieks", region: str = "ap-northeast-2", user: str = "minieks-admin",
                     namespace: str | None = None) -> KubeconfigNames:
    """Write a kubeconfig (mode 0600) for `server` and return the names it uses."""
    names = eks_names(cluster, region, user)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_private(p, render(server, ca_pem, token, names, namespace).encode())
    return names
