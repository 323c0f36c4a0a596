"""The EC2 emulator's single entry point: `Ec2Service.call(action, params)`.

Every front end goes through `call` with boto3-shaped parameters and gets boto3-shaped results:
the in-process client (planner, tests), the EC2 Query HTTP server (boto3, the aws CLI, ipamd in
the lab). `call` applies, in order: injected faults, throttling, latency on the caller's clock,
then the action under one lock, then persistence of what the action changed, then events for
listeners (the lab's VPC router follows addresses with them).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from minieks.clock import Clock, RealClock
from minieks.ec2 import instances, network_interfaces, private_addresses, tags, vpcs  # noqa: F401  (registers actions)
from minieks.ec2.errors import Ec2Error
from minieks.ec2.faults import Faults
from minieks.ec2.ids import IdFactory
from minieks.ec2.latency import Latency
from minieks.ec2.model import Instance, NetworkInterface, Subnet, Vpc
from minieks.ec2.registry import ACTIONS
from minieks.ec2.throttle import Throttle

REGION_ZONES = {
    "ap-northeast-2": ["a", "b", "c", "d"],
    "us-east-1": ["a", "b", "c", "d", "e", "f"],
    "us-west-2": ["a", "b", "c", "d"],
    "eu-west-1": ["a", "b", "c"],
}
PUBLIC_POOL = "198.51.100.0/24"   # documentation range: the lab's stand-in public addresses

Listener = Callable[[str, dict], None]


@dataclass
class Ec2State:
    """Every resource, by id. Address spaces live in the subnets."""

    vpcs: dict[str, Vpc] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    enis: dict[str, NetworkInterface] = field(default_factory=dict)
    public_ips: set[str] = field(default_factory=set)


class Ec2Service:
    def __init__(self, region: str = "ap-northeast-2", seed: int | str = 0, placement: str = "random",
                 clock: Clock | None = None, latency: Latency | None = None, throttling: bool = False,
                 state_file: str | None = None, throttle_buckets: dict | None = None):
        if region not in REGION_ZONES:
            raise ValueError(f"unknown region {region!r}; known: {', '.join(REGION_ZONES)}")
        if placement not in ("random", "lowest"):
            raise ValueError("placement must be 'random' or 'lowest'")
        self.region = region
        self.placement = placement
        self.clock = clock or RealClock()
        self.latency = latency or Latency("instant", seed=seed)
        self.throttle = Throttle(self.clock, enabled=throttling, buckets=throttle_buckets)
        self.faults = Faults(seed)
        self.ids = IdFactory(seed)
        self.placement_rng = random.Random(f"placement:{seed}")
        self.state = Ec2State()
        self.calls: dict[str, int] = {}
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._events: list[tuple[str, dict]] = []
        self._dirty: dict[tuple[str, str], object | None] = {}
        self.store = None
        if state_file:
            from minieks.ec2.store import Store
            self.store = Store(state_file)
            self.store.load_into(self)

    # ----------------------------------------------------------------------------- calling
    def call(self, action: str, params: dict | None = None) -> dict:
        params = params or {}
        spec = ACTIONS.get(action)
        if spec is None:
            raise Ec2Error("InvalidAction", f"The action {action} is not valid for this web service.")
        extra_delay, injected = self.faults.check(action)
        self.throttle.check(action, params)
        delay = self.latency.delay(action, params) + extra_delay
        if delay > 0:
            self.clock.sleep(delay)
        if injected:
            raise injected
        with self._lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            try:
                result = spec.handler(self, params)
            except BaseException:
                self._dirty.clear()
                self._events.clear()
                raise
            if spec.mutating:
                self._persist()
            events, self._events = self._events, []
        for kind, data in events:
            for listener in list(self._listeners):
                listener(kind, data)
        return result

    # ------------------------------------------------------------- used by the action modules
    def touch(self, kind: str, obj_id: str, obj: object | None) -> None:
        """Mark a resource changed (or deleted, with obj None) for persistence."""
        self._dirty[(kind, obj_id)] = obj

    def emit(self, kind: str, **data) -> None:
        self._events.append((kind, data))

    def zones(self) -> list[str]:
        return [self.region + z for z in REGION_ZONES[self.region]]

    def zone_id(self, zone: str) -> str:
        short = {"ap-northeast-2": "apne2", "us-east-1": "use1", "us-west-2": "usw2", "eu-west-1": "euw1"}[self.region]
        return f"{short}-az{REGION_ZONES[self.region].index(zone[-1]) + 1}"

    def new_space(self, cidr: str):
        from minieks.ec2.address_space import AddressSpace
        return AddressSpace(cidr, self.placement_rng, self.placement)

    def allocate_public_ip(self) -> str:
        import ipaddress
        for host in ipaddress.IPv4Network(PUBLIC_POOL).hosts():
            text = str(host)
            if text not in self.state.public_ips and not text.endswith((".1", ".2")):
                self.state.public_ips.add(text)
                return text
        raise Ec2Error("AddressLimitExceeded", "The maximum number of addresses has been reached.")

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _persist(self) -> None:
        if self.store and self._dirty:
            self.store.save(self, self._dirty)
        self._dirty.clear()

    def close(self) -> None:
        if self.store:
            self.store.close()
