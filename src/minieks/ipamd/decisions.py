"""ipamd's warm-pool decisions (spec §3.1, §3.4) as pure functions of plain numbers.

The pool loop gathers a PoolState from the datastore (ip_stats, free_prefixes) every cycle and asks
these functions what to do; nothing here reads a clock, EC2 or the kernel, so the conformance
vectors test them directly and the planner can call them in virtual time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPS_PER_PREFIX = 16
INSUFFICIENT_CIDR_COOLDOWN = 120.0  # seconds without pool growth after a subnet-full error
INSUFFICIENT_CIDR_CODES = frozenset({"InsufficientCidrBlocks", "InsufficientFreeAddressesInSubnet"})
IP_LIMIT_EXCEEDED_CODE = "PrivateIpAddressLimitExceeded"


def div_ceil(x: int, y: int) -> int:
    """Go's DivCeil: (x + y - 1) / y, truncating toward zero."""
    n = x + y - 1
    q = abs(n) // abs(y)
    return q if (n >= 0) == (y > 0) else -q


@dataclass(frozen=True)
class WarmTargets:
    """The warm-pool knobs (WARM_*_TARGET, MINIMUM_IP_TARGET, ENABLE_PREFIX_DELEGATION)."""

    warm_eni_target: int = 1
    warm_ip_target: int = 0
    minimum_ip_target: int = 0
    warm_prefix_target: int = 0
    prefix_delegation: bool = False

    @classmethod
    def from_config(cls, config) -> WarmTargets:
        return cls(config.warm_eni_target, config.warm_ip_target, config.minimum_ip_target,
                   config.warm_prefix_target, config.enable_prefix_delegation)


@dataclass(frozen=True)
class EniLimits:
    """What one node may hold (§3.1): ENIs, and IPs or prefixes per ENI."""

    max_eni: int
    max_ips_per_eni: int
    max_prefixes_per_eni: int = 0

    @classmethod
    def derive(cls, eni_limit: int, ipv4_limit: int, max_eni_env: int = -1,
               prefix_delegation: bool = False) -> EniLimits:
        """initENIAndIPLimits: the primary IP of each ENI never serves pods; PD multiplies by 16."""
        max_eni = min(max_eni_env, eni_limit) if max_eni_env >= 1 else eni_limit
        secondary = ipv4_limit - 1
        if prefix_delegation:
            return cls(max_eni, secondary * IPS_PER_PREFIX, secondary)
        return cls(max_eni, secondary, 0)


@dataclass(frozen=True)
class PoolState:
    """One network card's datastore numbers at decision time (GetIPStats + GetFreePrefixes)."""

    total_ips: int = 0
    assigned_ips: int = 0
    total_prefixes: int = 0
    free_prefixes: int = 0
    cooldown_ips: int = 0
    network_card: int = 0

    @property
    def available(self) -> int:
        return self.total_ips - self.assigned_ips

    @classmethod
    def of(cls, stats, free_prefixes: int = 0, network_card: int = 0) -> PoolState:
        """From a datastore.IPStats."""
        return cls(stats.total_ips, stats.assigned_ips, stats.total_prefixes, free_prefixes,
                   stats.cooldown_ips, network_card)


@dataclass(frozen=True)
class TargetState:
    """datastoreTargetState: addresses (prefixes under PD on card 0) short of / over the targets."""

    short: int = 0
    over: int = 0
    enabled: bool = False


def warm_ip_targets_defined(t: WarmTargets) -> bool:
    return t.warm_ip_target != 0 or t.minimum_ip_target != 0


def warm_prefix_target_defined(t: WarmTargets) -> bool:
    """True whenever PD is on, even with WARM_PREFIX_TARGET=0 (upstream tests >= 0)."""
    return t.warm_prefix_target >= 0 and t.prefix_delegation


def datastore_target_state(pool: PoolState, t: WarmTargets) -> TargetState:
    """How far the pool is from WARM_IP_TARGET / MINIMUM_IP_TARGET (cards > 0 always use 1/1)."""
    warm, minimum = t.warm_ip_target, t.minimum_ip_target
    if pool.network_card > 0:
        warm, minimum = 1, 1
    elif not warm_ip_targets_defined(t):
        return TargetState(0, 0, False)
    avail = pool.available
    short = max(warm - avail, 0)
    short = max(short, minimum - pool.total_ips)
    over = max(avail - warm, 0)
    over = max(min(over, pool.total_ips - minimum), 0)
    if pool.network_card == 0 and t.prefix_delegation:
        short_prefixes = div_ceil(short, IPS_PER_PREFIX)
        need_warm = div_ceil(pool.assigned_ips + t.warm_ip_target, IPS_PER_PREFIX)
        need_min = div_ceil(t.minimum_ip_target, IPS_PER_PREFIX)
        over_prefixes = max(min(pool.free_prefixes, pool.total_prefixes - need_warm), 0)
        over_prefixes = max(min(over_prefixes, pool.total_prefixes - need_min), 0)
        return TargetState(short_prefixes, over_prefixes, True)
    return TargetState(short, over, True)


def is_pool_too_low(pool: PoolState, t: WarmTargets, limits: EniLimits, max_pods: int) -> bool:
    """isDatastorePoolTooLow: never grow past max_pods addresses; else targets, else warm ENIs/prefixes."""
    if pool.total_ips >= max_pods:
        return False
    state = datastore_target_state(pool, t)
    if state.enabled:
        return state.short > 0
    warm = t.warm_prefix_target if t.prefix_delegation else t.warm_eni_target
    per = IPS_PER_PREFIX if t.prefix_delegation else limits.max_ips_per_eni
    avail = pool.available
    return avail < per * warm or (warm == 0 and avail == 0)


def is_pool_too_high(pool: PoolState, t: WarmTargets) -> bool:
    """isDatastorePoolTooHigh: WARM_ENI_TARGET mode never releases single IPs (only whole ENIs)."""
    state = datastore_target_state(pool, t)
    if state.enabled:
        return state.over > 0
    if warm_prefix_target_defined(t):
        return pool.free_prefixes > t.warm_prefix_target
    return False


def should_remove_extra_enis(pool: PoolState, t: WarmTargets, limits: EniLimits,
                             freeable_eni_exists: bool = False) -> bool:
    """shouldRemoveExtraENIs: whether to try freeing one ENI this cycle (the datastore decides which)."""
    if warm_ip_targets_defined(t) or pool.network_card > 0:
        return True
    warm = (t.warm_prefix_target if t.prefix_delegation else t.warm_eni_target) + 1
    if pool.available >= warm * limits.max_ips_per_eni:
        return True
    if t.prefix_delegation:
        return freeable_eni_exists
    return False


def over_to_release(pool: PoolState, t: WarmTargets) -> int:
    """decreaseDatastorePool's count: targets' `over`, else free prefixes above WARM_PREFIX_TARGET."""
    state = datastore_target_state(pool, t)
    if state.enabled:
        return state.over
    return max(pool.free_prefixes - t.warm_prefix_target, 0) if t.prefix_delegation else 0


def prefixes_needed(pool: PoolState, t: WarmTargets) -> int:
    """getPrefixesNeeded: at least one prefix per call."""
    if warm_ip_targets_defined(t):
        return max(1, datastore_target_state(pool, t).short)
    if t.prefix_delegation:
        return max(1, t.warm_prefix_target - pool.free_prefixes)
    return 1


def eni_resources_to_allocate(pool: PoolState, t: WarmTargets, limits: EniLimits,
                              ipv6: bool = False) -> int:
    """GetENIResourcesToAllocate: IPs (or prefixes) a new ENI is created with; ≤0 means no ENI."""
    if t.prefix_delegation:
        return 1 if ipv6 else min(prefixes_needed(pool, t), limits.max_prefixes_per_eni)
    state = datastore_target_state(pool, t)
    if state.enabled:
        return min(state.short, limits.max_ips_per_eni)
    return limits.max_ips_per_eni


def ips_to_assign(pool: PoolState, t: WarmTargets, limits: EniLimits) -> int:
    """tryAssignIPs' want: `short` under IP targets (0 = nothing to do), else a whole ENI's worth."""
    state = datastore_target_state(pool, t)
    return state.short if state.enabled else limits.max_ips_per_eni


def has_room_for_eni(eni_count: int, max_eni: int, *, unmanaged: int = 0, excluded: int = 0,
                     trunk_reserve: int = 0) -> bool:
    """hasRoomForEni: excluded ENIs count on neither side; a pending trunk ENI keeps one slot."""
    return (eni_count - excluded) < (max_eni - unmanaged - trunk_reserve - excluded)


def in_insufficient_cidr_cooldown(now: float, last_error: float | None) -> bool:
    """inInsufficientCidrCoolingPeriod: no pool growth for 120 s after a subnet-full error."""
    return last_error is not None and now - last_error <= INSUFFICIENT_CIDR_COOLDOWN


def is_insufficient_cidr_error(code: str | None) -> bool:
    return code in INSUFFICIENT_CIDR_CODES


def is_ip_limit_exceeded_error(code: str | None) -> bool:
    return code == IP_LIMIT_EXCEEDED_CODE


def ips_similar(pool: Iterable[str], imds: Sequence[tuple[str | None, bool]]) -> bool:
    """IPsSimilar: the datastore's /32s match IMDS's list, which also carries the ENI primary IP.

    `imds` is (address, is_primary) pairs; an address of None is a malformed IMDS entry.
    """
    pool_set = set(pool)
    if len(pool_set) + 1 != len(imds):
        return False
    for address, primary in imds:
        if address is None:
            return False
        if not primary and address not in pool_set:
            return False
    return True


def prefix_similar(pool: Iterable[str], imds: Sequence[str | None]) -> bool:
    """PrefixSimilar: the same set of prefixes in the datastore and in IMDS."""
    pool_set = set(pool)
    if len(pool_set) != len(imds):
        return False
    return all(p is not None and p in pool_set for p in imds)
