"""Property test: whatever sequence of datastore operations runs, no address is held by two pods,
no pod holds two addresses, a released address is not re-issued during its cooldown, and the
counters equal what the ENIs hold (apart from upstream's documented force-removal quirk)."""

import ipaddress

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from minieks.clock import VirtualClock
from minieks.ipamd.checkpoint import MemoryBackingStore
from minieks.ipamd.datastore import Datastore, DatastoreError
from minieks.ipamd.eni import IPAMKey

COOLDOWN = 30.0
ENIS = [f"eni-{n}" for n in range(4)]
# disjoint CIDRs, as EC2 guarantees: /32s in 10.1.0.0/24, /28 prefixes in 10.2.0.0/24
CIDRS = [(f"10.1.0.{n}/32", False) for n in range(1, 9)] + [(f"10.2.0.{16 * n}/28", True) for n in range(4)]
KEYS = [IPAMKey("aws-cni", f"sandbox-{n}", "eth0") for n in range(24)]


class DatastoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = VirtualClock(1_700_000_000.0)
        self.store = MemoryBackingStore()
        self.ds = Datastore(self.clock, ip_cooldown_period=COOLDOWN, backing_store=self.store, unix_offset=0)
        self.held: dict[IPAMKey, str] = {}
        self.released_at: dict[str, float] = {}
        self.total_deficit = 0   # upstream's double subtraction on forced ENI removal
        self.prefix_deficit = 0

    # --- helpers ---
    def _addresses(self):
        for eni in self.ds.enis():
            for cidr in eni.all_cidrs():
                yield eni, cidr

    def _forget_cidrs(self, networks):
        for ip in list(self.released_at):
            if any(ipaddress.ip_address(ip) in net for net in networks):
                del self.released_at[ip]
        for key, ip in list(self.held.items()):
            if any(ipaddress.ip_address(ip) in net for net in networks):
                del self.held[key]

    # --- rules ---
    @rule(n=st.integers(0, len(ENIS) - 1))
    def add_eni(self, n):
        if self.ds.eni(ENIS[n]) is None:
            self.ds.add_eni(ENIS[n], n, is_primary=(n == 0))

    @rule(n=st.integers(0, len(ENIS) - 1), c=st.integers(0, len(CIDRS) - 1))
    def add_cidr(self, n, c):
        cidr, prefix = CIDRS[c]
        if self.ds.eni(ENIS[n]) is None or any(str(x.network) == cidr for _, x in self._addresses()):
            return
        self.ds.add_ipv4_cidr(ENIS[n], cidr, prefix)

    @rule(c=st.integers(0, len(CIDRS) - 1), force=st.booleans())
    def del_cidr(self, c, force):
        cidr = CIDRS[c][0]
        owner = next((e for e, x in self._addresses() if str(x.network) == cidr), None)
        if owner is None:
            return
        try:
            self.ds.del_ipv4_cidr(owner.id, cidr, force)
        except DatastoreError as err:
            assert not force and str(err) == "datastore: IP is used and can not be deleted"
            return
        self._forget_cidrs([ipaddress.ip_network(cidr)])

    @rule(n=st.integers(0, len(ENIS) - 1), force=st.booleans())
    def remove_eni(self, n, force):
        eni = self.ds.eni(ENIS[n])
        if eni is None:
            return
        networks = [c.network for c in eni.all_cidrs()]
        had_pods = eni.has_pods()
        try:
            self.ds.remove_eni(eni.id, force)
        except DatastoreError as err:
            assert had_pods and not force and str(err) == "datastore: ENI is used and can not be deleted"
            return
        if had_pods:
            self.total_deficit += sum(net.num_addresses for net in networks)
            self.prefix_deficit += sum(1 for c in eni.all_cidrs() if c.is_prefix)
        self._forget_cidrs(networks)

    @rule(w=st.integers(0, 20), m=st.integers(0, 20), p=st.integers(0, 2))
    def remove_unused_eni(self, w, m, p):
        before = {e.id: [c.network for c in e.all_cidrs()] for e in self.ds.enis()}
        removed = self.ds.remove_unused_eni(w, m, p)
        if removed:
            eni_had = before[removed]
            assert not any(k for k, ip in self.held.items()
                           if any(ipaddress.ip_address(ip) in net for net in eni_had))
            self._forget_cidrs(eni_had)

    @rule(k=st.integers(0, len(KEYS) - 1), fail=st.booleans())
    def assign(self, k, fail):
        key = KEYS[k]
        if fail and key not in self.held:
            self.store.fail_next = OSError("checkpoint write failed")
        try:
            got = self.ds.assign_pod_ipv4_address(key)
        except DatastoreError as err:
            assert str(err) == "AssignPodIPAddress: no available IP/Prefix addresses"
            self.store.fail_next = None
            return
        except OSError:
            assert key not in self.held
            return
        if key in self.held:
            assert got.ip == self.held[key]  # idempotent ADD
            return
        released = self.released_at.get(got.ip)
        assert released is None or self.clock.now() - released > COOLDOWN, "address re-issued during cooldown"
        self.held[key] = got.ip

    @rule(k=st.integers(0, len(KEYS) - 1))
    def unassign(self, k):
        key = KEYS[k]
        try:
            release = self.ds.unassign_pod_ip_address(key)
        except DatastoreError as err:
            assert key not in self.held and str(err) == "datastore: unknown pod"
            return
        assert release.ip == self.held.pop(key)
        self.released_at[release.ip] = self.clock.now()

    @rule(seconds=st.sampled_from([0.5, 5.0, 29.0, 31.0, 61.0]))
    def advance(self, seconds):
        self.clock.advance(seconds)

    @rule(on=st.booleans())
    def set_pd(self, on):
        self.ds.pd_enabled = on

    @rule(n=st.integers(0, len(ENIS) - 1), excluded=st.booleans())
    def set_excluded(self, n, excluded):
        if self.ds.eni(ENIS[n]) is not None:
            self.ds.set_eni_excluded(ENIS[n], excluded)

    # --- invariants ---
    @invariant()
    def one_address_per_key_and_one_key_per_address(self):
        seen: dict[IPAMKey, str] = {}
        for _, cidr in self._addresses():
            for addr in cidr.addresses.values():
                assert ipaddress.ip_address(addr.address) in cidr.network
                if addr.assigned:
                    assert addr.key not in seen, f"{addr.key} holds {seen.get(addr.key)} and {addr.address}"
                    seen[addr.key] = addr.address
        assert seen == self.held

    @invariant()
    def counters_match_the_enis(self):
        cidrs = [c for _, c in self._addresses()]
        assert self.ds.assigned == sum(c.assigned_count for c in cidrs)
        assert self.ds.total == sum(c.size for c in cidrs) - self.total_deficit
        assert self.ds.allocated_prefixes == sum(1 for c in cidrs if c.is_prefix) - self.prefix_deficit
        stats = self.ds.ip_stats()
        usable = [c for e, c in self._addresses()
                  if not e.excluded_for_pod_ips and c.is_prefix == self.ds.pd_enabled]
        assert stats.total_ips == sum(c.size for c in usable)
        assert stats.assigned_ips == sum(c.assigned_count for c in usable)
        assert 0 <= stats.cooldown_ips <= stats.total_ips - stats.assigned_ips

    @invariant()
    def checkpoint_lists_exactly_the_held_addresses(self):
        if self.store.data is not None and self.store.fail_next is None:
            on_file = {e.key: e.ipv4 for e in self.store.data.allocations}
            assert on_file == self.held


TestDatastoreProperties = DatastoreMachine.TestCase
TestDatastoreProperties.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
