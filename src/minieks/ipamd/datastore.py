"""The datastore of one network card (spec §4): which ENIs, CIDRs and pod addresses ipamd holds,
and the rules for handing addresses out and taking them back.

It does no I/O of its own: time comes from a Clock, persistence goes through a backing store
(checkpoint.py), and kernel clean-up for dead pods is returned to the caller. The pool loop asks
it for statistics (`ip_stats`) and feeds them to decisions.py.

Determinism (upstream walks Go maps, i.e. random order; DESIGN.md principle 3): ENIs are walked by
device number (then id), CIDRs by address, and an address is the lowest free one — a cooled-down
released address first (the lowest of them), else the lowest never-used address of the CIDR.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from minieks.clock import Clock
from minieks.ipamd import checkpoint as ckpt
from minieks.ipamd.decisions import div_ceil
from minieks.ipamd.eni import (Address, Cidr, Eni, IPAMKey, IPAMMetadata, IPNetwork, next_ip,
                               parse_network, route_table_id)

log = logging.getLogger(__name__)

DEFAULT_IP_COOLDOWN = 30.0
EXCLUDED_CIDR_RELEASE_DELAY = 5.0
MIGRATED_NETWORK_NAME = "_migrated-from-cri"  # keys of pods set up before v1.12 (CRI migration)
MIGRATED_IF_NAME = "unknown"


class DatastoreError(Exception):
    """A refused datastore operation; str() is upstream's exact error text."""


class NoAvailableIPError(DatastoreError):
    def __init__(self) -> None:
        super().__init__("AssignPodIPAddress: no available IP/Prefix addresses")


class UnknownPodError(DatastoreError):
    def __init__(self) -> None:
        super().__init__("datastore: unknown pod")


ERR_DUPLICATE_ENI = "data store: duplicate ENI"
ERR_UNKNOWN_ENI = "datastore: unknown ENI"
ERR_ADD_UNKNOWN_ENI = "add ENI's IP to datastore: unknown ENI"
ERR_DUPLICATE_IP = "datastore: IP already in data store"
ERR_UNKNOWN_IP = "datastore: unknown IP"
ERR_IP_IN_USE = "datastore: IP is used and can not be deleted"
ERR_ENI_IN_USE = "datastore: ENI is used and can not be deleted"
ERR_PD_OFF_V6 = "PD is not enabled. V6 is only supported in PD mode"


@dataclass(frozen=True)
class PrefixDelegationDefaults:
    """GetPrefixDelegationDefaults: one prefix per call unit, 16 addresses each, /28."""

    num_prefixes_per_eni: int = 1
    num_ips_per_prefix: int = 16
    supported_prefix_len: int = 28


PD_DEFAULTS = PrefixDelegationDefaults()


@dataclass(frozen=True)
class IPStats:
    """GetIPStats: counts over non-excluded ENIs and mode-matching CIDRs (§3.3)."""

    total_ips: int = 0
    assigned_ips: int = 0
    cooldown_ips: int = 0
    total_prefixes: int = 0

    @property
    def available(self) -> int:
        """Cooldown addresses count as available in every warm-pool computation."""
        return self.total_ips - self.assigned_ips

    def __str__(self) -> str:
        return (f"Total IPs/Prefixes = {self.total_ips}/{self.total_prefixes}, "
                f"AssignedIPs/CooldownIPs: {self.assigned_ips}/{self.cooldown_ips}")


@dataclass(frozen=True)
class Assignment:
    """The result of AssignPodIPv4Address / AssignPodIPv6Address."""

    ip: str
    eni_id: str
    device_number: int
    route_table_id: int


@dataclass(frozen=True)
class Release:
    """The result of UnassignPodIPAddress."""

    eni_id: str
    ip: str
    device_number: int
    interfaces_count: int
    route_table_id: int


class Datastore:
    """ENI → CIDR → address for one network card; thread-safe (gRPC and the pool loop share it)."""

    def __init__(self, clock: Clock, *, pd_enabled: bool = False,
                 ip_cooldown_period: float = DEFAULT_IP_COOLDOWN, network_card: int = 0,
                 backing_store: ckpt.BackingStore | None = None, unix_offset: float | None = None):
        """`unix_offset` maps clock time to Unix time for checkpoint timestamps
        (default: measured now, right for a real clock; pass 0 for a virtual clock in Unix seconds)."""
        self.clock = clock
        self.pd_enabled = pd_enabled
        self.ip_cooldown_period = float(ip_cooldown_period)
        self.network_card = network_card
        self.backing_store = backing_store
        self.unix_offset = time.time() - clock.now() if unix_offset is None else unix_offset
        self._enis: dict[str, Eni] = {}
        self._lock = threading.RLock()
        # upstream's counters (metrics read them); `total` keeps upstream's quirks, see remove_eni
        self.total = 0
        self.assigned = 0
        self.allocated_prefixes = 0
        self.force_removed_ips = 0
        self.force_removed_enis = 0
        self.no_available_ip_count = 0
        self.pending_excluded_cidr_releases: list[tuple[float, str, str]] = []

    # --- ENIs ---------------------------------------------------------------------------------

    def add_eni(self, eni_id: str, device_number: int, *, is_primary: bool = False,
                is_trunk: bool = False, is_efa: bool = False, route_table: int | None = None,
                subnet_id: str = "") -> Eni:
        """AddENI; the ENI's minimum lifetime starts now (so an ipamd restart restarts it)."""
        with self._lock:
            if eni_id in self._enis:
                raise DatastoreError(ERR_DUPLICATE_ENI)
            eni = Eni(id=eni_id, device_number=device_number, create_time=self.clock.now(),
                      route_table_id=(route_table if route_table is not None
                                      else route_table_id(device_number, self.network_card)),
                      is_primary=is_primary, is_trunk=is_trunk, is_efa=is_efa, subnet_id=subnet_id)
            self._enis[eni_id] = eni
            return eni

    def set_eni_excluded(self, eni_id: str, excluded: bool) -> None:
        """SetENIExcludedForPodIPs: an ENI in a subnet tagged kubernetes.io/role/cni=0 serves no pods."""
        with self._lock:
            self._get_eni(eni_id).excluded_for_pod_ips = excluded

    def enis(self) -> list[Eni]:
        """All ENIs in the datastore's walking order (device number, then id)."""
        with self._lock:
            return sorted(self._enis.values(), key=lambda e: (e.device_number, e.id))

    def eni(self, eni_id: str) -> Eni | None:
        with self._lock:
            return self._enis.get(eni_id)

    def remove_eni(self, eni_id: str, force: bool = False) -> None:
        """RemoveENIFromDataStore. With `force`, pods on it are unassigned first.

        Quirk kept from upstream: a forced removal of an ENI with pods subtracts its CIDR sizes
        from `total` (and prefixes from `allocated_prefixes`) twice.
        """
        with self._lock:
            eni = self._enis.get(eni_id)
            if eni is None:
                raise DatastoreError(ERR_UNKNOWN_ENI)
            if eni.has_pods():
                if not force:
                    raise DatastoreError(ERR_ENI_IN_USE)
                log.warning("Force removing eni %s with %d assigned pods", eni_id, eni.assigned_count)
                self.force_removed_enis += 1
                self.force_removed_ips += eni.assigned_count
                for cidr in eni.all_cidrs():
                    for addr in cidr.addresses.values():
                        if addr.assigned:
                            self._unassign(addr)
                self._save_ignoring_errors()
                self._uncount(eni)
            self._uncount(eni)
            del self._enis[eni_id]

    def _uncount(self, eni: Eni) -> None:
        for cidr in eni.all_cidrs():
            self.total -= cidr.size
            if cidr.is_prefix:
                self.allocated_prefixes -= 1

    # --- CIDRs --------------------------------------------------------------------------------

    def add_ipv4_cidr(self, eni_id: str, cidr: str | IPNetwork, is_prefix: bool = False) -> None:
        """AddIPv4CidrToStore: a /32 secondary IP or a /28 prefix becomes usable for pods."""
        self._add_cidr(eni_id, parse_network(cidr), is_prefix, v6=False)

    def add_ipv6_cidr(self, eni_id: str, cidr: str | IPNetwork) -> None:
        """AddIPv6CidrToStore: IPv6 prefixes are always prefixes."""
        self._add_cidr(eni_id, parse_network(cidr), True, v6=True)

    def _add_cidr(self, eni_id: str, network: IPNetwork, is_prefix: bool, v6: bool) -> None:
        with self._lock:
            eni = self._enis.get(eni_id)
            if eni is None:
                raise DatastoreError(ERR_ADD_UNKNOWN_ENI)
            table = eni.ipv6_cidrs if v6 else eni.ipv4_cidrs
            if str(network) in table:
                raise DatastoreError(ERR_DUPLICATE_IP)
            table[str(network)] = Cidr(network=network, is_prefix=is_prefix)
            self.total += network.num_addresses
            if is_prefix:
                self.allocated_prefixes += 1

    def del_ipv4_cidr(self, eni_id: str, cidr: str | IPNetwork, force: bool = False) -> None:
        """DelIPv4CidrFromStore; with `force`, pods bound to it are unassigned (reconcile)."""
        self._del_cidr(eni_id, parse_network(cidr), force, v6=False)

    def del_ipv6_cidr(self, eni_id: str, cidr: str | IPNetwork, force: bool = False) -> None:
        self._del_cidr(eni_id, parse_network(cidr), force, v6=True)

    def _del_cidr(self, eni_id: str, network: IPNetwork, force: bool, v6: bool) -> None:
        with self._lock:
            eni = self._enis.get(eni_id)
            if eni is None:
                raise DatastoreError(ERR_UNKNOWN_ENI)
            table = eni.ipv6_cidrs if v6 else eni.ipv4_cidrs
            cidr = table.get(str(network))
            if cidr is None:
                raise DatastoreError(ERR_UNKNOWN_IP)
            in_use = cidr.assigned_count
            if in_use:
                if not force:
                    raise DatastoreError(ERR_IP_IN_USE)
                log.warning("Force deleting assigned ip %s on eni %s", network, eni_id)
                self.force_removed_ips += in_use
                for addr in cidr.addresses.values():
                    if addr.assigned:
                        self._unassign(addr)
                self._save_ignoring_errors()
            self.total -= cidr.size
            if cidr.is_prefix:
                self.allocated_prefixes -= 1
            del table[str(network)]

    def eni_cidrs(self, eni_id: str, *, prefixes: bool, family: str = "4") -> list[str]:
        """The CIDR strings of one kind on an ENI (reconcile compares them with IMDS)."""
        with self._lock:
            eni = self._get_eni(eni_id)
            return [str(c.network) for c in eni.sorted_cidrs(family) if c.is_prefix == prefixes]

    # --- assignment ---------------------------------------------------------------------------

    def assign_pod_ipv4_address(self, key: IPAMKey, metadata: IPAMMetadata = IPAMMetadata()) -> Assignment:
        """AssignPodIPv4Address: idempotent per key; only CIDRs of the current mode are used."""
        return self._assign(key, metadata, family="4")

    def assign_pod_ipv6_address(self, key: IPAMKey, metadata: IPAMMetadata = IPAMMetadata()) -> Assignment:
        """AssignPodIPv6Address: PD only; the lowest free address of the first IPv6 prefix."""
        if not self.pd_enabled:
            raise DatastoreError(ERR_PD_OFF_V6)
        return self._assign(key, metadata, family="6")

    def _assign(self, key: IPAMKey, metadata: IPAMMetadata, family: str) -> Assignment:
        with self._lock:
            found = self._find(key)
            if found is not None:
                eni, _, addr = found
                log.info("AssignPodIPv4Address: duplicate pod assign for sandbox %s", key)
                return Assignment(addr.address, eni.id, eni.device_number, eni.route_table_id)
            for eni in self.enis():
                if eni.excluded_for_pod_ips:
                    continue
                for cidr in eni.sorted_cidrs(family):
                    if family == "4" and cidr.is_prefix != self.pd_enabled:
                        continue
                    ip = self._unused_ip(cidr)
                    if ip is None:
                        continue
                    addr = cidr.addresses.get(ip) or Address(ip)
                    cidr.addresses[ip] = addr
                    self._bind(addr, key, metadata, self.clock.now(), self._unix_ns_now())
                    try:
                        self._save()
                    except Exception as err:
                        log.warning("Failed to update backing store: %s", err)
                        self._unassign(addr)
                        del cidr.addresses[ip]
                        raise
                    log.info("AssignPodIPv4Address: Assign IP %s to sandbox %s", ip, key)
                    return Assignment(ip, eni.id, eni.device_number, eni.route_table_id)
            self.no_available_ip_count += 1
            log.error("DataStore has no available IP/Prefix addresses")
            raise NoAvailableIPError()

    def _unused_ip(self, cidr: Cidr) -> str | None:
        """getUnusedIP: a released address whose cooldown is over (the lowest; every such entry is
        dropped so it counts as fresh), else the lowest address without an entry."""
        now = self.clock.now()
        expired = [a for a in cidr.sorted_addresses()
                   if not a.assigned and not a.in_cooldown(now, self.ip_cooldown_period)]
        for addr in expired:
            del cidr.addresses[addr.address]
        if expired:
            return expired[0].address
        if len(cidr.addresses) >= cidr.size:
            return None
        ip = str(cidr.network.network_address)
        while ip in cidr.addresses:
            ip = next_ip(ip)
        return ip

    def unassign_pod_ip_address(self, key: IPAMKey) -> Release:
        """UnassignPodIPAddress: the address stays in cooldown for IP_COOLDOWN_PERIOD seconds."""
        with self._lock:
            found = self._find(key)
            if found is None:
                log.warning("UnassignPodIPAddress: Failed to find IPAM entry under full key, "
                            "trying CRI-migrated version")
                found = self._find(IPAMKey(MIGRATED_NETWORK_NAME, key.container_id, MIGRATED_IF_NAME))
            if found is None:
                log.warning("UnassignPodIPAddress: Failed to find sandbox %s", key)
                raise UnknownPodError()
            eni, cidr, addr = found
            original = (addr.key, addr.metadata, addr.assigned_time, addr.allocation_ns)
            self._unassign(addr)
            try:
                self._save()
            except Exception:
                self._bind(addr, original[0], original[1], original[2], original[3])
                raise
            addr.unassigned_time = self.clock.now()
            if eni.excluded_for_pod_ips and cidr.assigned_count == 0:
                # upstream releases such a CIDR from a goroutine 5 s later; the pool loop does it here
                self.pending_excluded_cidr_releases.append(
                    (self.clock.now() + EXCLUDED_CIDR_RELEASE_DELAY, eni.id, str(cidr.network)))
            log.info("UnassignPodIPAddress: sandbox %s's ipAddr %s, DeviceNumber %d",
                     key, addr.address, eni.device_number)
            return Release(eni.id, addr.address, eni.device_number,
                           original[1].interfaces_count or 1, eni.route_table_id)

    def _bind(self, addr: Address, key: IPAMKey, metadata: IPAMMetadata,
              assigned_time: float | None, allocation_ns: int) -> None:
        addr.key, addr.metadata = key, metadata
        addr.assigned_time, addr.allocation_ns = assigned_time, allocation_ns
        self.assigned += 1

    def _unassign(self, addr: Address) -> None:
        addr.key, addr.metadata = IPAMKey(), IPAMMetadata()
        self.assigned -= 1

    def _find(self, key: IPAMKey) -> tuple[Eni, Cidr, Address] | None:
        for eni in self._enis.values():
            for cidr in (*eni.ipv4_cidrs.values(), *eni.ipv6_cidrs.values()):
                for addr in cidr.addresses.values():
                    if addr.key == key:
                        return eni, cidr, addr
        return None

    def _unix_ns_now(self) -> int:
        return round((self.clock.now() + self.unix_offset) * 1_000_000_000)

    # --- statistics ---------------------------------------------------------------------------

    def ip_stats(self, family: str = "4") -> IPStats:
        """GetIPStats: non-excluded ENIs, CIDRs of the current mode (IPv6: the IPv6 prefixes)."""
        with self._lock:
            now = self.clock.now()
            total = assigned = cooldown = 0
            for eni in self._enis.values():
                if eni.excluded_for_pod_ips:
                    continue
                for cidr in self._mode_cidrs(eni, family, ordered=False):
                    used, cooling = cidr.counts(now, self.ip_cooldown_period)
                    total += cidr.size
                    assigned += used
                    cooldown += cooling
            return IPStats(total, assigned, cooldown, self.allocated_prefixes)

    def _mode_cidrs(self, eni: Eni, family: str = "4", ordered: bool = True) -> list[Cidr]:
        """The ENI's CIDRs of the current mode, in address order unless the caller only counts."""
        if family == "6":
            return eni.sorted_cidrs("6") if ordered else list(eni.ipv6_cidrs.values())
        cidrs = eni.sorted_cidrs("4") if ordered else eni.ipv4_cidrs.values()
        return [c for c in cidrs if c.is_prefix == self.pd_enabled]

    def free_prefixes(self) -> int:
        """GetFreePrefixes: prefix CIDRs with no pod on them, on every ENI (excluded ones too)."""
        with self._lock:
            return sum(1 for eni in self._enis.values() for c in eni.ipv4_cidrs.values()
                       if c.is_prefix and c.assigned_count == 0)

    def find_freeable_cidrs(self, eni_id: str) -> list[str]:
        """FindFreeableCidrs: the ENI's mode-matching CIDRs with no pod (cooldown does not block)."""
        with self._lock:
            eni = self._enis.get(eni_id)
            if eni is None:
                return []
            return [str(c.network) for c in self._mode_cidrs(eni) if c.assigned_count == 0]

    def freeable_ips(self, eni_id: str) -> list[str]:
        """FreeableIPs: unused /32s (released when PD is switched on)."""
        with self._lock:
            eni = self._get_eni(eni_id)
            return [str(c.network.network_address) for c in eni.sorted_cidrs("4")
                    if not c.is_prefix and c.assigned_count == 0]

    def freeable_prefixes(self, eni_id: str) -> list[str]:
        """FreeablePrefixes: unused IPv4 and IPv6 prefixes (released when PD is switched off)."""
        with self._lock:
            eni = self._get_eni(eni_id)
            return [str(c.network) for c in eni.all_cidrs() if c.is_prefix and c.assigned_count == 0]

    def check_freeable_eni_exists(self) -> bool:
        """CheckFreeableENIexists: some non-primary, non-trunk, non-EFA ENI has no pods."""
        with self._lock:
            return any(not e.is_primary and not e.is_trunk and not e.is_efa and not e.has_pods()
                       for e in self._enis.values())

    def allocatable_enis(self, max_ips_per_eni: int, skip_primary: bool = False) -> list[Eni]:
        """GetAllocatableENIs: ENIs that can take more IPs/prefixes (not trunk, not excluded)."""
        with self._lock:
            return [e for e in self.enis()
                    if not e.is_trunk and not e.excluded_for_pod_ips
                    and not (skip_primary and e.is_primary)
                    and len(e.ipv4_cidrs) < max_ips_per_eni]

    # --- freeing ENIs (§3.7) ------------------------------------------------------------------

    def remove_unused_eni(self, warm_ip_target: int, minimum_ip_target: int,
                          warm_prefix_target: int) -> str:
        """RemoveUnusedENIFromStore: drop at most one deletable ENI; returns its id or ""."""
        with self._lock:
            eni = self._deletable_eni(warm_ip_target, minimum_ip_target, warm_prefix_target)
            if eni is None:
                return ""
            self._uncount(eni)
            del self._enis[eni.id]
            log.info("RemoveUnusedENIFromStore %s: IP/Prefix address pool stats: free %d addresses",
                     eni.id, self.total - self.assigned)
            return eni.id

    def _deletable_eni(self, warm_ip: int, minimum_ip: int, warm_prefix: int) -> Eni | None:
        now = self.clock.now()
        for eni in self.enis():
            if (eni.is_primary or eni.too_young(now)
                    or eni.has_ip_in_cooldown(now, self.ip_cooldown_period) or eni.has_pods()):
                continue
            others = [o for o in self._enis.values() if o.id != eni.id and not o.excluded_for_pod_ips]
            if warm_ip and self._free_on(others) < self._round_to_prefixes(warm_ip):
                continue
            if minimum_ip and self._total_on(others) < self._round_to_prefixes(minimum_ip):
                continue
            if self.pd_enabled and warm_prefix and self._empty_cidrs_on(others) < warm_prefix:
                continue
            if eni.is_trunk or eni.is_efa:
                continue
            return eni
        return None

    def _round_to_prefixes(self, ips: int) -> int:
        per = PD_DEFAULTS.num_ips_per_prefix
        return div_ceil(ips, per) * per if self.pd_enabled else ips

    def _free_on(self, enis: Iterable[Eni]) -> int:
        return sum(c.size - c.assigned_count for e in enis for c in self._mode_cidrs(e, ordered=False))

    def _total_on(self, enis: Iterable[Eni]) -> int:
        return sum(c.size for e in enis for c in self._mode_cidrs(e, ordered=False))

    @staticmethod
    def _empty_cidrs_on(enis: Iterable[Eni]) -> int:
        return sum(1 for e in enis for c in e.ipv4_cidrs.values() if c.assigned_count == 0)

    # --- checkpoint ---------------------------------------------------------------------------

    def checkpoint_data(self) -> ckpt.CheckpointData:
        """Every assigned address, in walking order."""
        with self._lock:
            entries = []
            for eni in self.enis():
                for cidr in eni.all_cidrs():
                    for addr in cidr.sorted_addresses():
                        if addr.assigned:
                            v6 = cidr.family == "6"
                            entries.append(ckpt.CheckpointEntry(
                                key=addr.key, ipv4="" if v6 else addr.address,
                                ipv6=addr.address if v6 else "",
                                allocation_timestamp=addr.allocation_ns, metadata=addr.metadata))
            return ckpt.CheckpointData(allocations=tuple(entries))

    def _save(self) -> None:
        if self.backing_store is not None:
            self.backing_store.save(self.checkpoint_data())

    def _save_ignoring_errors(self) -> None:
        try:
            self._save()
        except Exception as err:
            log.warning("Unable to update backing store: %s", err)

    def restore(self, host_links: Iterable[str] | Callable[[], Iterable[str]] | None = None,
                ipv6: bool = False) -> ckpt.RestoreReport:
        """ReadBackingStore (§4.5), run after the ENIs and their CIDRs are back from IMDS.

        `host_links` is the node's link names (or a function listing them); entries whose pod has
        no host veth are dropped and their rules returned for the caller to delete. None skips the
        pruning. The file is rewritten at the end.
        """
        with self._lock:
            report = ckpt.RestoreReport()
            data = self.backing_store.load() if self.backing_store is not None else None
            if data is None:
                return report
            if data.version != ckpt.FORMAT_VERSION:
                raise ckpt.CheckpointError(
                    f"datastore: unknown backing store format ({data.version} != {ckpt.FORMAT_VERSION}) "
                    "- wrong CNI/ipamd version? (Rebooting this node will restart local pods and probably help)")
            entries = list(data.allocations)
            if host_links is not None:
                links = list(host_links() if callable(host_links) else host_links)
                kept = []
                for entry in entries:
                    error = ckpt.veth_missing_error(entry, links)
                    if error is None:
                        kept.append(entry)
                        continue
                    log.info("Pruning stale checkpoint entry %s (%s): %s", entry.key, entry.ip, error)
                    report.stale.append(entry)
                    report.rule_deletes.extend(ckpt.stale_rule_deletes(entry.ip))
                entries = kept
            for entry in entries:
                if self._bind_restored(entry, ipv6):
                    report.restored.append(entry)
                else:
                    log.info("datastore: Sandbox %s uses unknown IP Address %s - presuming stale/dead",
                             entry.key, entry.ip)
                    report.unknown_ip.append(entry)
            self._save_ignoring_errors()
            return report

    def _bind_restored(self, entry: ckpt.CheckpointEntry, ipv6: bool) -> bool:
        text = entry.ipv6 if ipv6 else entry.ipv4
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        family = "6" if ipv6 else "4"
        for eni in self.enis():
            for cidr in eni.sorted_cidrs(family):
                if ip in cidr.network:
                    if str(ip) in cidr.addresses:
                        raise DatastoreError(ERR_DUPLICATE_IP)
                    addr = Address(str(ip))
                    cidr.addresses[str(ip)] = addr
                    self._bind(addr, entry.key, entry.metadata,
                               entry.allocation_timestamp / 1e9 - self.unix_offset,
                               entry.allocation_timestamp)
                    log.debug("Recovered %s => %s/%s", entry.key, eni.id, ip)
                    return True
        return False

    # --- helpers ------------------------------------------------------------------------------

    def _get_eni(self, eni_id: str) -> Eni:
        eni = self._enis.get(eni_id)
        if eni is None:
            raise DatastoreError(ERR_UNKNOWN_ENI)
        return eni

    def take_due_excluded_cidr_releases(self) -> list[tuple[str, str]]:
        """(eni, cidr) pairs on excluded ENIs emptied ≥5 s ago, for the pool loop to release."""
        with self._lock:
            now = self.clock.now()
            due = [(e, c) for t, e, c in self.pending_excluded_cidr_releases if t <= now]
            self.pending_excluded_cidr_releases = [
                p for p in self.pending_excluded_cidr_releases if p[0] > now]
            return due


def datastores_for_cards(clock: Clock, skip_network_cards: Iterable[bool],
                         make: Callable[[int], Datastore] | None = None) -> dict[int, Datastore]:
    """InitializeDataStores: one datastore per managed network card, keyed by card index."""
    build = make or (lambda card: Datastore(clock, network_card=card))
    return {card: build(card) for card, skip in enumerate(skip_network_cards) if not skip}
