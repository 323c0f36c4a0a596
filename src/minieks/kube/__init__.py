"""The control plane's API side: object store, Kubernetes API server (HTTPS, kubectl-compatible),
tables, patches, selectors, validation, OpenAPI, exec over WebSocket and kubeconfig files.

    from minieks.kube import ApiServer, Store

    store = Store("state/cluster.db")              # SQLite; None keeps everything in memory
    sub = store.subscribe(on_event, "pods")        # controller callback, on its own thread
    server = ApiServer(store, state_dir="state/pki", exec_handler=run_in_pod_netns).start()
    server.write_kubeconfig("state/kubeconfig", cluster="seed", region="ap-northeast-2")
    ...
    server.stop(); sub.close(); store.close()

Store (store.py) — objects are JSON dicts keyed by (resource, namespace, name), resource being
the plural ("pods", "deployments", "eniconfigs"; namespace None/"" for cluster-scoped kinds):
  create(resource, obj, namespace=None)            → stored copy (uid, creationTimestamp, rv, generation)
  get / try_get(resource, namespace, name)         → copy (404 ApiError / None when absent)
  list(resource, namespace=None, labels=, fields=) → (items ordered by namespace, name; resourceVersion)
  update(resource, obj, part="all"|"main"|"status"), update_status(resource, obj)
  mutate(resource, namespace, name, fn, part=)     → atomic read-modify-write (fn edits a copy)
  patch(resource, namespace, name, body, "merge"|"strategic"|"json"|"apply", part=)
  delete(resource, namespace, name, grace_period=, propagation=) → DeleteResult(object, finished)
  finalize_delete(resource, namespace, name)       → the kubelet's "containers are gone" for pods
  expire_graceful(now=None)                        → finalize pods whose grace period ran out
  delete_collection(...), watch(resource, namespace, resource_version=, labels=, fields=) → Watch
  subscribe(callback, resource=None, namespace=None, resource_version=None) → Subscription
  resource_version, close()
Every write is in SQLite before the call returns; reopening resumes objects and versions.
create/update/mutate/patch/delete take dry_run=True to check without storing. Errors are ApiError (errors.py) with the
HTTP code and the Status a real API server returns.

ApiServer (apiserver.py): HTTPS on 127.0.0.1 (port 0 = any free one; `.url`, `.port`, `.token`,
`.ca_pem`), bearer token from `token=` or `state_dir/token` (`auth=False` to accept anything),
`version=` the /version gitVersion (default EKS-like "v1.31.4-eks-2d5f260", minor "31+": kubectl's
dispatcher then runs kubectl 1.31), `exec_handler(namespace, pod, container, argv, tty)` returning
an argv to run or a started Popen (exec_ws.py), `log_handler(namespace, pod, container)` returning
a reader of the container's new output (rest.LogReader; `kubectl logs -f` keeps reading).

write_kubeconfig (kubeconfig.py): eksctl's names — cluster `<cluster>.<region>.eksctl.io`,
user and context `<user>@<cluster>.<region>.eksctl.io` — CA data and token, file mode 0600.
"""

from .apiserver import DEFAULT_VERSION, ApiServer
from .errors import ApiError
from .kubeconfig import write_kubeconfig
from .store import DeleteResult, Store
from .watch import Subscription, Watch, WatchEvent

__all__ = ["ApiServer", "ApiError", "DEFAULT_VERSION", "DeleteResult", "Store", "Subscription", "Watch",
           "WatchEvent", "write_kubeconfig"]
