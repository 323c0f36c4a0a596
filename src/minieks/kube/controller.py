"""The shape every control loop here shares: watch some resources, queue keys, reconcile each.

Level-triggered like Kubernetes' own controllers: an event only says "look at this key again";
`reconcile(key)` reads the current state from the store and makes the world match. A key is queued
once however many events arrive for it, and a periodic resync catches anything time-based. With
`workers` > 1 (the kubelet's pod workers), different keys are reconciled at once but never one key
twice at the same time: a key queued while it is being reconciled waits for that to finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from minieks.kube.errors import ApiError
from minieks.kube.store import Store
from minieks.kube.watch import WatchEvent

log = logging.getLogger("minieks.kube")

Key = tuple[str, str]   # (namespace, name)


class Controller:
    name = "controller"
    resync_seconds = 10.0
    workers = 1

    def __init__(self, store: Store):
        self.store = store
        self._queue: list[Key] = []
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._subs = []
        self._threads: list[threading.Thread] = []
        self._next_resync = 0.0

    # -------------------------------------------------------------------- what to watch
    def watches(self) -> Iterable[tuple[str, Callable[[WatchEvent], Iterable[Key]]]]:
        """(resource, event → keys to reconcile) pairs."""
        return ()

    def all_keys(self) -> Iterable[Key]:
        """Every key, for the periodic resync."""
        return ()

    def reconcile(self, key: Key) -> None:
        raise NotImplementedError

    # -------------------------------------------------------------------- machinery
    def enqueue(self, key: Key) -> None:
        with self._cond:
            if key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cond.notify_all()          # a worker, not only a wait_idle() caller, must wake

    def start(self) -> None:
        for resource, keys_of in self.watches():
            def on_event(ev: WatchEvent, keys_of=keys_of) -> None:
                for key in keys_of(ev):
                    self.enqueue(key)
            self._subs.append(self.store.subscribe(on_event, resource, on_error=self._log_error))
        self._next_resync = time.monotonic() + self.resync_seconds
        self._threads = [threading.Thread(target=self._run, name=f"ctl-{self.name}-{i}", daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for sub in self._subs:
            self.store.unsubscribe(sub)
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _log_error(self, exc: BaseException) -> None:
        log.error("%s: %s", self.name, exc, exc_info=exc)

    def _next_key(self) -> Key | None:
        """The first queued key no other worker is reconciling (under the condition's lock)."""
        for i, key in enumerate(self._queue):
            if key not in self._processing:
                del self._queue[i]
                self._queued.discard(key)
                self._processing.add(key)
                return key
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            resync = False
            with self._cond:
                key = self._next_key()
                while key is None and not self._stop.is_set() and time.monotonic() < self._next_resync:
                    self._cond.wait(timeout=min(self._next_resync - time.monotonic(), 0.5))
                    key = self._next_key()
                if time.monotonic() >= self._next_resync:     # due, even while keys keep coming
                    self._next_resync = time.monotonic() + self.resync_seconds
                    resync = True
            if resync:
                for k in self.all_keys():
                    self.enqueue(k)
            if key is None:
                continue
            try:
                self.reconcile(key)
            except ApiError as err:
                if err.code == 409:          # someone else wrote first: look again
                    self.enqueue(key)
                elif err.code != 404:
                    log.warning("%s %s: %s", self.name, key, err)
            except Exception as err:         # noqa: BLE001 - one bad object must not stop the loop
                log.exception("%s %s failed: %s", self.name, key, err)
            finally:
                with self._cond:
                    self._processing.discard(key)
                    self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once the queue is empty and nothing is being reconciled (tests)."""
        deadline = time.monotonic() + timeout
        for sub in self._subs:
            sub.wait_idle(max(0.0, deadline - time.monotonic()))
        with self._cond:
            while self._queue or self._processing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(timeout=remaining)
        return True


def owner_keys(kind: str) -> Callable[[WatchEvent], list[Key]]:
    """Keys of the `kind` objects that own the event's object (ownerReferences)."""
    def keys(ev: WatchEvent) -> list[Key]:
        meta = ev.object.get("metadata") or {}
        return [(meta.get("namespace", ""), ref["name"]) for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == kind]
    return keys


def own_key(ev: WatchEvent) -> list[Key]:
    meta = ev.object.get("metadata") or {}
    return [(meta.get("namespace", ""), meta["name"])]


def owner_reference(obj: dict, api_version: str, kind: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: dict, owner: dict) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] and ref.get("controller")
               for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])
