"""Watch streams and in-process subscriptions over the store's change log.

The store appends a WatchEvent for every committed change and offers it to each open Watch; a
Watch keeps only what its resource, namespace and selectors match, turning selector transitions
into ADDED/DELETED as a real API server does. A Subscription runs a callback on its own thread
for every event of a Watch, so controllers never run inside the store's lock.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .selectors import FieldSelector, LabelSelector


@dataclass(frozen=True)
class WatchEvent:
    """One change: `object` is the state after it (the last state for DELETED), `old` before it.

    Both are shared snapshots: read them, copy before changing them."""

    type: str                       # ADDED, MODIFIED, DELETED (ERROR only on the HTTP wire)
    resource: str                   # store key, e.g. "pods"
    object: dict[str, Any]
    old: dict[str, Any] | None
    rv: int


def _ns(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


class Watch:
    """A filtered, ordered stream of WatchEvents; `get` blocks, `close` ends it for both sides."""

    def __init__(self, resource: str | None, namespace: str | None,
                 labels: LabelSelector | None = None, fields: FieldSelector | None = None,
                 on_close: Callable[["Watch"], None] | None = None):
        self.resource = resource
        self.namespace = namespace or None
        self.labels = labels or LabelSelector()
        self.fields = fields or FieldSelector()
        self._queue: queue.Queue[WatchEvent | None] = queue.Queue()
        self._on_close = on_close
        self.closed = False
        self.queued = 0                 # events queued so far (Subscription.wait_idle uses it)

    def matches(self, resource: str, obj: dict[str, Any] | None) -> bool:
        if obj is None or (self.resource is not None and resource != self.resource):
            return False
        if self.namespace is not None and _ns(obj) != self.namespace:
            return False
        return self.labels.matches((obj.get("metadata") or {}).get("labels")) and self.fields.matches(obj)

    def offer(self, ev: WatchEvent) -> None:
        """Queue `ev` as this watch sees it (called by the store, under its lock)."""
        if self.closed:
            return
        now = self.matches(ev.resource, ev.object)
        if ev.type == "MODIFIED":
            before = self.matches(ev.resource, ev.old)
            if now and not before:
                ev = WatchEvent("ADDED", ev.resource, ev.object, ev.old, ev.rv)
            elif before and not now:
                ev = WatchEvent("DELETED", ev.resource, ev.object, ev.old, ev.rv)
            elif not now:
                return
        elif not now:
            return
        self.push(ev)

    def push(self, ev: WatchEvent) -> None:
        """Queue `ev` unfiltered (synthetic ADDED events of the initial state)."""
        self.queued += 1
        self._queue.put(ev)

    def get(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event, or None after `timeout` seconds or once closed."""
        if self.closed and self._queue.empty():
            return None
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.put(None)
        if self._on_close:
            self._on_close(self)

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription:
    """Calls `callback(event)` on a dedicated thread for every event of `watch`, in order.

    The callback gets private copies (it may change them). Exceptions it raises are passed to
    `on_error` (default: ignored) so one bad event does not stop a controller."""

    def __init__(self, watch: Watch, callback: Callable[[WatchEvent], None],
                 clone: Callable[[Any], Any], on_error: Callable[[BaseException], None] | None = None,
                 name: str = "kube-subscription"):
        self.watch = watch
        self._callback = callback
        self._clone = clone
        self._on_error = on_error
        self._idle = threading.Condition()
        self._handled = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ev = self.watch.get(timeout=0.5)
            if ev is None:
                if self.watch.closed:
                    return
                continue
            private = WatchEvent(ev.type, ev.resource, self._clone(ev.object),
                                 self._clone(ev.old) if ev.old is not None else None, ev.rv)
            try:
                self._callback(private)
            except BaseException as exc:  # noqa: BLE001 - reported, never fatal to the thread
                if self._on_error:
                    self._on_error(exc)
            with self._idle:
                self._handled += 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once every event queued so far has been handled (for tests and orderly stops)."""
        import time
        deadline = time.monotonic() + timeout
        target = self.watch.queued
        with self._idle:
            while self._handled < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 2.0) -> None:
        self.watch.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
