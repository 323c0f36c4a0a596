"""Builders of the objects the kube tests seed, and a kubectl runner for the end-to-end tests."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NODE_NAME = "ip-192-168-1-51.ap-northeast-2.compute.internal"


def node(name: str = NODE_NAME, ip: str = "192.168.1.51") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux",
                                                  "topology.kubernetes.io/zone": "ap-northeast-2a"}},
            "spec": {"providerID": "aws:///ap-northeast-2a/i-0123456789abcdef0"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "addresses": [{"type": "InternalIP", "address": ip},
                                     {"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": "v1.31.4-eks-aeac579", "osImage": "Amazon Linux 2023.6.20250107",
                                    "kernelVersion": "6.1.119-129.201.amzn2023.x86_64",
                                    "containerRuntimeVersion": "containerd://1.7.25",
                                    "architecture": "amd64", "operatingSystem": "linux"}}}


def deployment(name: str = "nginx-deployment", replicas: int = 2, image: str = "nginx:1.27",
               app: str = "nginx") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": app, "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


def running_pod(name: str, app: str, ip: str, owner: dict[str, Any] | None = None,
                node_name: str = NODE_NAME) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": app}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node_name, "containers": [{"name": app, "image": "nicolaka/netshoot"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.1.51",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": app, "image": "nicolaka/netshoot",
                                              "imageID": "docker.io/nicolaka/netshoot@sha256:0", "ready": True,
                                              "restartCount": 0, "started": True,
                                              "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}


def replicaset_for(deploy: dict[str, Any], hash_: str = "21cf177113") -> dict[str, Any]:
    spec = copy.deepcopy(deploy["spec"])
    labels = dict(spec["template"]["metadata"]["labels"], **{"pod-template-hash": hash_})
    spec["template"]["metadata"]["labels"] = labels
    spec["selector"] = {"matchLabels": labels}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{deploy['metadata']['name']}-{hash_}", "namespace": "default", "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": deploy["metadata"]["name"], "uid": deploy["metadata"]["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": spec}


@dataclass
class Kubectl:
    """Runs the real kubectl against one kubeconfig with its own discovery cache."""

    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), HOME=str(self.cache_dir.parent))
        return subprocess.run([KUBECTL, "--cache-dir", str(self.cache_dir), *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout, env=env)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), HOME=str(self.cache_dir.parent))
        return subprocess.Popen([KUBECTL, "--cache-dir", str(self.cache_dir), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        res = self.run(*args, stdin=stdin)
        assert res.returncode == 0, f"kubectl {' '.join(args)} failed ({res.returncode}): {res.stderr}"
        return res.stdout
