"""ipamd's cluster facts from the Kubernetes API, as aws-node reads them on EKS: max pods from its
Node's `status.capacity.pods`, the ENIConfig named by the node's label or annotation (custom
networking), and whether the node is unschedulable. Plain HTTPS with the kubeconfig's CA and token.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import tempfile
import time
import urllib.error
import urllib.request

import yaml

from minieks.ipamd.ports import EniConfig

log = logging.getLogger("ipamd")
EXTERNAL_ENICONFIG_LABEL = "vpc.amazonaws.com/externalEniConfig"
CACHE_SECONDS = 30.0


class KubernetesCluster:
    def __init__(self, kubeconfig: str, node_name: str, annotation_key: str = "k8s.amazonaws.com/eniConfig",
                 label_key: str = "k8s.amazonaws.com/eniConfig", timeout: float = 5.0):
        config = yaml.safe_load(open(kubeconfig))
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server = cluster["server"].rstrip("/")
        self.token = user.get("token", "")
        self._ssl = ssl.create_default_context()
        if cluster.get("certificate-authority-data"):
            with tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False) as ca:
                ca.write(base64.b64decode(cluster["certificate-authority-data"]).decode())
            self._ssl.load_verify_locations(ca.name)
        self.node_name = node_name
        self.annotation_key, self.label_key = annotation_key, label_key
        self.timeout = timeout
        self._node: dict | None = None
        self._node_at = 0.0

    def _get(self, path: str) -> dict | None:
        request = urllib.request.Request(self.server + path, headers={"Authorization": f"Bearer {self.token}",
                                                                      "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def node(self) -> dict | None:
        if self._node is None or time.monotonic() - self._node_at > CACHE_SECONDS:
            try:
                self._node = self._get(f"/api/v1/nodes/{self.node_name}")
                self._node_at = time.monotonic()
            except (OSError, urllib.error.URLError) as err:
                log.warning("Unable to read node %s from the API server: %s", self.node_name, err)
        return self._node

    def wait_for_node(self, timeout: float = 60.0) -> bool:
        """At start-up ipamd waits for its Node (kubelet registers it) before reading max pods."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node() is not None:
                return True
            self._node = None
            time.sleep(0.5)
        return False

    def max_pods(self) -> int | None:
        node = self.node()
        if not node:
            return None
        try:
            return int(node["status"]["capacity"]["pods"])
        except (KeyError, ValueError):
            return None

    def eni_config_name(self) -> str:
        node = self.node() or {}
        labels = node.get("metadata", {}).get("labels") or {}
        annotations = node.get("metadata", {}).get("annotations") or {}
        return (labels.get(EXTERNAL_ENICONFIG_LABEL) or annotations.get(self.annotation_key)
                or labels.get(self.label_key) or "default")

    def eni_config(self) -> EniConfig | None:
        name = self.eni_config_name()
        try:
            obj = self._get(f"/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs/{name}")
        except (OSError, urllib.error.URLError):
            return None
        if not obj:
            return None
        spec = obj.get("spec") or {}
        return EniConfig(name, spec.get("subnet", ""), tuple(spec.get("securityGroups") or ()))

    def unschedulable(self) -> bool:
        node = self.node() or {}
        taints = (node.get("spec") or {}).get("taints") or []
        return bool((node.get("spec") or {}).get("unschedulable")) or any(
            t.get("key") == "node.kubernetes.io/unschedulable" and t.get("effect") == "NoSchedule" for t in taints)
