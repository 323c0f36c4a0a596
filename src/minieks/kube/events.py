"""Recording Events as Kubernetes components do: one Event per (object, reason, message, source),
counted up when it repeats, named `<object>.<hex timestamp>` so name order is chronological."""

from __future__ import annotations

import threading
import time

from minieks.kube.errors import ApiError
from minieks.kube.store import Store
from minieks.kube.timefmt import rfc3339


class EventRecorder:
    def __init__(self, store: Store, component: str, host: str = ""):
        self.store = store
        self.component = component
        self.host = host
        self._seen: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def record(self, obj: dict, type_: str, reason: str, message: str, field_path: str = "") -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (obj.get("kind"), namespace, meta["name"], meta.get("uid"), reason, message)
        now = rfc3339(time.time())
        with self._lock:
            existing = self._seen.get(key)
            if existing:
                try:
                    self.store.mutate("events", namespace, existing,
                                      lambda ev: ev.update(count=ev.get("count", 1) + 1, lastTimestamp=now))
                    return
                except ApiError:
                    pass
            name = f"{meta['name']}.{time.time_ns():x}"[:253]
            involved = {"kind": obj.get("kind"), "namespace": namespace, "name": meta["name"],
                        "uid": meta.get("uid", ""), "apiVersion": obj.get("apiVersion", "v1"),
                        "resourceVersion": meta.get("resourceVersion", "")}
            if field_path:
                involved["fieldPath"] = field_path
            event = {"apiVersion": "v1", "kind": "Event",
                     "metadata": {"name": name, "namespace": namespace},
                     "involvedObject": involved, "reason": reason, "message": message,
                     "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                     "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": type_,
                     "eventTime": None, "reportingComponent": self.component, "reportingInstance": self.host}
            try:
                self.store.create("events", event, namespace=namespace)
            except ApiError:
                return
            self._seen[key] = name
