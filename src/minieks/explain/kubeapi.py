"""A small Kubernetes API client over HTTPS with a kubeconfig's CA and bearer token (urllib, ssl):
GET an object or a list, and the API's Status on errors, as kubectl reports them."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

TIMEOUT = 10.0


class KubeApiError(Exception):
    """A non-2xx answer: HTTP status, the Status reason (NotFound, ...) and message."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def kubectl_text(self) -> str:
        """What kubectl prints: `Error from server (NotFound): pods "x" not found`."""
        return f"Error from server ({self.reason}): {self.message}"


class KubeUnreachable(OSError):
    """The API server did not answer (the cluster's supervisor is not running)."""


@dataclass
class KubeClient:
    server: str
    token: str
    ca_pem: bytes

    @classmethod
    def from_kubeconfig(cls, path: str | Path) -> KubeClient:
        doc = yaml.safe_load(Path(path).read_text())
        context_name = doc.get("current-context")
        context = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
        if "certificate-authority-data" in cluster:
            ca = base64.b64decode(cluster["certificate-authority-data"])
        else:
            ca = Path(cluster["certificate-authority"]).read_bytes()
        return cls(cluster["server"].rstrip("/"), user.get("token", ""), ca)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def get(self, path: str, **query: str) -> dict:
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}",
                                                       "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self._context(), timeout=TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                status = json.loads(body)
            except ValueError:
                status = {}
            raise KubeApiError(err.code, status.get("reason") or err.reason,
                               status.get("message") or body.decode(errors="replace").strip()) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise KubeUnreachable(f"The connection to the server {urllib.parse.urlsplit(self.server).netloc} was "
                                  f"refused ({reason})") from None
