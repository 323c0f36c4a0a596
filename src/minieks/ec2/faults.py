"""Injected EC2 failures: make an action fail N times, or with probability p, or answer slowly.

Used by tests and by the lab to reproduce what users meet on AWS (throttling storms, exhausted
subnets, slow attaches) on demand, in process or over the server's admin path.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from minieks.ec2.errors import Ec2Error


@dataclass
class Fault:
    action: str                    # an EC2 action name, or "*" for every action
    code: str | None = None        # the error code to fail with; None for a pure delay
    message: str = ""
    count: int | None = None       # fail this many times, then stop (None: no limit)
    probability: float | None = None
    delay: float | None = None
    status: int = 400

    def as_dict(self) -> dict:
        return {"action": self.action, "code": self.code, "message": self.message, "count": self.count,
                "probability": self.probability, "delay": self.delay, "status": self.status}


class Faults:
    def __init__(self, seed: int | str = 0):
        self._rules: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")

    def add(self, action: str, code: str | None = None, message: str = "", count: int | None = None,
            probability: float | None = None, delay: float | None = None, status: int | None = None) -> Fault:
        if code is None and delay is None:
            raise ValueError("a fault needs an error code, a delay, or both")
        if probability is not None and not 0 <= probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        default_status = 503 if code in ("RequestLimitExceeded", "Unavailable", "InternalError") else 400
        fault = Fault(action, code, message or f"Injected failure of {action}", count, probability, delay,
                      status or default_status)
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._rules)

    def check(self, action: str) -> tuple[float, Ec2Error | None]:
        """The extra delay for this call, and the error to fail it with (or None)."""
        delay, error = 0.0, None
        with self._lock:
            for fault in list(self._rules):
                if fault.action not in (action, "*"):
                    continue
                if fault.probability is not None and self._rng.random() >= fault.probability:
                    continue
                delay += fault.delay or 0.0
                if fault.code and error is None:
                    error = Ec2Error(fault.code, fault.message, fault.status)
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self._rules.remove(fault)
        return delay, error
