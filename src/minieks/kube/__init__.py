"""The control plane's API side: object store, Kubernetes API server (HTTPS, kubectl-compatible),
tables, patches, selectors, validation, OpenAPI, exec over WebSocket and kubeconfig files.

Public entry points:
- `Store` (store.py): objects, resourceVersions, watches, subscriptions, GC, SQLite persistence;
- `ApiServer` (apiserver.py): serves a Store over HTTPS to kubectl and the Python client;
- `write_kubeconfig` (kubeconfig.py).
"""

from .apiserver import DEFAULT_VERSION, ApiServer
from .errors import ApiError
from .kubeconfig import write_kubeconfig
from .store import DeleteResult, Store
from .watch import Subscription, Watch, WatchEvent

__all__ = ["ApiServer", "ApiError", "DEFAULT_VERSION", "DeleteResult", "Store", "Subscription", "Watch",
           "WatchEvent", "write_kubeconfig"]
