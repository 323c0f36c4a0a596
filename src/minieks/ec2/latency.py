"""How long EC2 takes to answer, per action, on the caller's clock.

`instant` answers at once (tests, planning of decisions only); `realistic` follows what users
see on AWS: an ENI takes several seconds to create and attach (up to about 10 s), an address
assignment about half a second, a prefix under a second, a describe about 0.1 s. Each delay is
drawn from a range with a seeded generator, so runs replay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "instant": {},
    "realistic": {
        "CreateNetworkInterface": (0.5, 1.5),
        "AttachNetworkInterface": (2.0, 8.0),
        "DetachNetworkInterface": (1.0, 3.0),
        "DeleteNetworkInterface": (0.3, 0.8),
        "AssignPrivateIpAddresses": (0.3, 0.7),
        "AssignPrivateIpAddresses:prefix": (0.5, 0.9),
        "UnassignPrivateIpAddresses": (0.2, 0.5),
        "ModifyNetworkInterfaceAttribute": (0.1, 0.3),
        "RunInstances": (1.0, 3.0),
        "TerminateInstances": (0.5, 1.0),
        "Describe*": (0.05, 0.15),
        "*": (0.05, 0.2),
    },
}


@dataclass
class Latency:
    profile: str = "instant"
    overrides: dict[str, tuple[float, float]] = field(default_factory=dict)
    seed: int | str = 0

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown latency profile {self.profile!r}; choose from {', '.join(PROFILES)}")
        self._table = dict(PROFILES[self.profile], **self.overrides)
        self._rng = random.Random(f"latency:{self.seed}")

    def delay(self, action: str, params: dict) -> float:
        key = action
        if action == "AssignPrivateIpAddresses" and (params.get("Ipv4PrefixCount") or params.get("Ipv4Prefixes")):
            key = "AssignPrivateIpAddresses:prefix"
        span = (self._table.get(key) or self._table.get(action)
                or (self._table.get("Describe*") if action.startswith("Describe") else None)
                or self._table.get("*"))
        if not span:
            return 0.0
        low, high = span
        return low if low == high else self._rng.uniform(low, high)
