"""The reconcile cooldown cache: addresses and prefixes ipamd just released to EC2.

IMDS lags EC2 by seconds, so for 60 s after a release the reconcile must not re-add what IMDS still
lists (spec §1 ipReconcileCooldown, §3.10). Time comes from the Clock, as everywhere in ipamd.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from minieks.clock import Clock

IP_RECONCILE_COOLDOWN = 60.0


class ReconcileCooldownCache:
    """address or CIDR string → expiry time (clock seconds)."""

    def __init__(self, clock: Clock, cooldown: float = IP_RECONCILE_COOLDOWN):
        self.clock = clock
        self.cooldown = cooldown
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, items: Iterable[str]) -> None:
        expiry = self.clock.now() + self.cooldown
        with self._lock:
            for item in items:
                self._expiry[item] = expiry

    def remove(self, item: str) -> None:
        with self._lock:
            self._expiry.pop(item, None)

    def set_expiry(self, item: str, when: float) -> None:
        with self._lock:
            self._expiry[item] = when

    def recently_freed(self, item: str) -> tuple[bool, bool]:
        """(found, still cooling): an expired entry is still found until the reconcile removes it."""
        with self._lock:
            expiry = self._expiry.get(item)
        if expiry is None:
            return False, False
        return True, self.clock.now() < expiry
