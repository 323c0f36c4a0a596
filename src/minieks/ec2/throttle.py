"""EC2 request throttling: account-wide token buckets per API family.

AWS meters EC2 calls per account in buckets (a burst capacity refilled at a steady rate); a call
finding its bucket empty fails with RequestLimitExceeded (HTTP 503). Families and defaults follow
AWS's published numbers as the project uses them. Off by default so tests are not throttled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from minieks.clock import Clock
from minieks.ec2.errors import Ec2Error

THROTTLED = ("RequestLimitExceeded", "Request limit exceeded.", 503)

ENI_MUTATING = {"CreateNetworkInterface", "DeleteNetworkInterface", "AssignPrivateIpAddresses",
                "UnassignPrivateIpAddresses", "ModifyNetworkInterfaceAttribute", "CreateTags", "DeleteTags"}
ATTACH = {"AttachNetworkInterface", "DetachNetworkInterface"}


@dataclass
class BucketSpec:
    capacity: float
    refill_per_second: float


DEFAULT_BUCKETS = {
    "mutating": BucketSpec(100, 5),
    "attach": BucketSpec(50, 5),
    "describe": BucketSpec(100, 20),
    "describe-network-interfaces-unfiltered": BucketSpec(50, 10),
    "other": BucketSpec(100, 5),
}


def family(action: str, params: dict) -> str:
    if action in ENI_MUTATING:
        return "mutating"
    if action in ATTACH:
        return "attach"
    if action == "DescribeNetworkInterfaces" and not params.get("NetworkInterfaceIds") and not params.get("Filters"):
        return "describe-network-interfaces-unfiltered"
    if action.startswith(("Describe", "Get")):
        return "describe"
    return "other"


class TokenBucket:
    def __init__(self, spec: BucketSpec, clock: Clock):
        self.spec = spec
        self._clock = clock
        self._tokens = spec.capacity
        self._stamp = clock.now()

    def take(self) -> bool:
        now = self._clock.now()
        self._tokens = min(self.spec.capacity, self._tokens + (now - self._stamp) * self.spec.refill_per_second)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Throttle:
    """Raises RequestLimitExceeded when the action's family has no token left."""

    def __init__(self, clock: Clock, enabled: bool = False, buckets: dict[str, BucketSpec] | None = None):
        self.enabled = enabled
        self._clock = clock
        self._specs = dict(DEFAULT_BUCKETS, **(buckets or {}))
        self._buckets = {name: TokenBucket(spec, clock) for name, spec in self._specs.items()}
        self._lock = threading.Lock()
        self.throttled: dict[str, int] = {}

    def check(self, action: str, params: dict) -> None:
        if not self.enabled:
            return
        name = family(action, params)
        with self._lock:
            if self._buckets[name].take():
                return
            self.throttled[action] = self.throttled.get(action, 0) + 1
        raise Ec2Error(*THROTTLED)
