"""The clocks the core runs on: real time in the lab, virtual time in the planner.

Everything that waits or timestamps (ipamd's pool loop, EC2 latency, throttling buckets, IP
cooldown) takes a Clock, so one piece of logic serves both modes (DESIGN.md "one core, two clocks").
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since an arbitrary epoch; only differences matter."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""


class RealClock:
    """Wall-clock time (monotonic for durations, so the lab is immune to clock steps)."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Time that moves only when told to; `sleep` advances it at once.

    `call_at` schedules callbacks so a discrete-event simulation can run many nodes on one
    clock: `run_until(t)` fires due callbacks in time order (ties in scheduling order).
    """

    def __init__(self, start: float = 0.0):
        self._now = start
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self.run_until(self._now + seconds)

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._queue, (max(when, self._now), next(self._order), callback))

    def run_until(self, until: float) -> None:
        while True:
            with self._lock:
                if not self._queue or self._queue[0][0] > until:
                    self._now = max(self._now, until)
                    return
                when, _, callback = heapq.heappop(self._queue)
                self._now = max(self._now, when)
            callback()

    def pending(self) -> int:
        return len(self._queue)
