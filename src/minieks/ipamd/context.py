"""The running ipamd of one node (upstream's IPAMContext): start-up, and the 5-second cycle.

It joins the pieces: configuration, the EC2 port (awsutils), the node's network and the cluster's
facts (ports), the datastore and its checkpoint, and the warm-pool decisions. The clock decides
whether it runs in real time (the lab) or virtual time (the planner); nothing else differs.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from dataclasses import dataclass

from botocore.exceptions import ClientError

from minieks.aws import instance_types
from minieks.clock import Clock
from minieks.ipamd import pool, reconcile
from minieks.ipamd.awsutils import TAG_INSTANCE_ID, TAG_NO_MANAGE, AwsUtils, EniInfo, InstanceInfo
from minieks.ipamd.checkpoint import FileBackingStore, MemoryBackingStore
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Datastore, DatastoreError
from minieks.ipamd.decisions import EniLimits, PoolState, WarmTargets
from minieks.ipamd.eni import route_table_id
from minieks.ipamd.metadata import Metadata
from minieks.ipamd.ports import ClusterFacts, NodeNetwork, NoNetwork, StaticCluster
from minieks.ipamd.reconcile_cooldown import ReconcileCooldownCache

log = logging.getLogger("ipamd")

POOL_MONITOR_INTERVAL = 5.0
NODE_IP_POOL_RECONCILE_INTERVAL = 60.0
DEFAULT_MAX_PODS = 110
LEAKED_ENI_INTERVAL = 3600.0
LEAKED_ENI_STARTUP_DELAY_MAX = 300


class IpamdInitError(Exception):
    """nodeInit failed: ipamd exits and the node never becomes ready."""


@dataclass(frozen=True)
class Activity:
    """One thing ipamd did or met, for `minieks explain` and the lab's narration."""

    time: float
    kind: str
    detail: str


class IpamContext:
    def __init__(self, config: IpamdConfig, aws: AwsUtils, metadata: Metadata, clock: Clock, *,
                 network: NodeNetwork | None = None, cluster: ClusterFacts | None = None,
                 persist_checkpoint: bool = True, unix_offset: float | None = None):
        self.config = config
        self.aws = aws
        self.metadata = metadata
        self.clock = clock
        self.network = network or NoNetwork()
        self.cluster = cluster or StaticCluster()
        self.persist_checkpoint = persist_checkpoint
        self.unix_offset = unix_offset
        self.instance: InstanceInfo | None = None
        self.limits: EniLimits | None = None
        self.targets: WarmTargets | None = None
        self.ds: Datastore | None = None
        self.primary_ips: dict[str, str] = {}
        self.unmanaged_enis = 0
        self.max_pods = DEFAULT_MAX_PODS
        self.last_insufficient_cidr_error: float | None = None
        self.last_decrease = float("-inf")
        self.last_node_ip_pool_action = float("-inf")
        self.reconcile_cooldown = ReconcileCooldownCache(clock)
        self.terminating = False
        self.errors: dict[str, int] = {}
        self.reconcile_counts: dict[str, int] = {}
        self.activity: deque[Activity] = deque(maxlen=2000)
        self.ready = threading.Event()
        self.metrics = None                      # an IpamdMetrics when the daemon serves /metrics
        self.mode_release_pending = False        # a DEL in PD mode freed a /32: release unused ones
        self._leaked_check_at = float("inf")

    # ------------------------------------------------------------------------------- helpers
    @property
    def pd(self) -> bool:
        return self.config.enable_prefix_delegation

    def pool_state(self) -> PoolState:
        return PoolState.of(self.ds.ip_stats(), self.ds.free_prefixes())

    def note(self, kind: str, detail: str) -> None:
        self.activity.append(Activity(self.clock.now(), kind, detail))

    def error(self, fn: str, message: str) -> None:
        """ipamdErrInc + the log line: the awscni_ipamd_error_count{fn} counter."""
        self.errors[fn] = self.errors.get(fn, 0) + 1
        if self.metrics:
            self.metrics.ipamd_error(fn)
        log.error(message)
        self.note("error", message)

    # ------------------------------------------------------------------------------ node init
    def prepare(self) -> None:
        """The first part of nodeInit: instance facts, limits, config checks and an empty datastore."""
        self.instance = info = self.aws.instance_info()
        eni_limit, ipv4_limit = self._instance_limits(info.instance_type)
        t = instance_types.catalog().get(info.instance_type)
        pd_supported = t.supports_prefix_delegation if t else True
        self.config = self.config.for_instance(info.instance_type, pd_supported)
        self.limits = EniLimits.derive(eni_limit, ipv4_limit, self.config.max_eni, self.config.enable_prefix_delegation)
        self.targets = WarmTargets.from_config(self.config)
        store = (FileBackingStore(self.config.checkpoint_path(0)) if self.persist_checkpoint
                 else MemoryBackingStore())
        self.ds = Datastore(self.clock, pd_enabled=self.pd, ip_cooldown_period=self.config.ip_cooldown_period,
                            backing_store=store, unix_offset=self.unix_offset)
        self.max_pods = self.cluster.max_pods() or DEFAULT_MAX_PODS

    def node_init(self) -> None:
        """nodeInit: discover the attached ENIs and their addresses, restore the checkpoint, pre-scale."""
        self.prepare()
        info = self.instance
        enis = self.metadata.attached_enis()
        primary = next(e for e in enis if e.is_primary)
        self.network.setup_host_network(list(info.vpc_cidrs), info.primary_ip, primary.mac)
        managed = [e for e in enis if e.network_card == 0 and self._is_managed(e)]
        self.unmanaged_enis = sum(1 for e in enis if e.network_card == 0) - len(managed)
        for eni in managed:
            if not self.config.provisioning_disabled:
                self.aws.tag_eni(eni.id, eni.tags)
            self.setup_eni(eni)
        report = self.ds.restore(self.network.host_links())
        self.network.delete_rules(report.rule_deletes)
        for entry in report.restored:
            found = self._eni_of(entry.ip)
            if found:
                self.network.update_pod_rule(entry.ip, found.route_table_id)
        pool.release_other_mode(self)
        log.info("IP pool manager - max pods: %d, warm IP target: %d, warm prefix target: %d, "
                 "warm ENI target: %d, minimum IP target: %d", self.max_pods, self.targets.warm_ip_target,
                 self.targets.warm_prefix_target, self.targets.warm_eni_target, self.targets.minimum_ip_target)
        if not self.config.provisioning_disabled and pool.too_low(self):
            try:
                pool.increase(self, raise_errors=True)
            except ClientError as err:
                raise IpamdInitError(f"error while trying to increase datastore pool: {err}") from err
        if self.config.custom_network_cfg and self.ds.ip_stats().total_ips == 0:
            raise IpamdInitError("Failed to attach any ENIs for custom networking")
        delay = random.Random(info.instance_id).randrange(LEAKED_ENI_STARTUP_DELAY_MAX)
        self._leaked_check_at = self.clock.now() + delay
        self.note("ready", f"ipamd ready on {info.instance_id} ({info.instance_type}), max pods {self.max_pods}")
        self.ready.set()

    def _instance_limits(self, instance_type: str) -> tuple[int, int]:
        t = instance_types.catalog().get(instance_type)
        if t:
            return t.max_enis, t.ipv4_per_eni
        log.warning("instance type does not exist: %s; calling DescribeInstanceTypes", instance_type)
        return self.aws.instance_type_limits(instance_type)

    def _is_managed(self, eni: EniInfo) -> bool:
        if eni.is_primary:
            return True
        if eni.tags.get(TAG_NO_MANAGE) == "true":
            return False
        if TAG_NO_MANAGE in eni.tags:
            return True
        if eni.tags.get(TAG_INSTANCE_ID) == self.aws.instance_id:
            return True
        return self.config.manage_untagged_eni

    def _eni_of(self, ip: str):
        import ipaddress
        address = ipaddress.ip_address(ip)
        for eni in self.ds.enis():
            if any(address in c.network for c in eni.ipv4_cidrs.values()):
                return eni
        return None

    def setup_eni(self, eni: EniInfo) -> None:
        """setupENI: datastore entry, route table and rule for secondary ENIs, and its addresses."""
        table = route_table_id(eni.device_number, eni.network_card)
        try:
            self.ds.add_eni(eni.id, eni.device_number, is_primary=eni.is_primary, route_table=table,
                            subnet_id=eni.subnet_id)
        except DatastoreError:
            pass                                   # already known: duplicates are ignored
        self.primary_ips[eni.id] = eni.primary_ip
        if not eni.is_primary:
            self.network.setup_eni_network(eni, table)
        if eni.is_primary and self.config.custom_network_cfg:
            return
        for ip in eni.secondary_ips:
            self._add_cidr(eni.id, f"{ip}/32", prefix=False)
        for prefix in eni.prefixes:
            self._add_cidr(eni.id, prefix, prefix=True)

    def _add_cidr(self, eni_id: str, cidr: str, prefix: bool) -> None:
        try:
            self.ds.add_ipv4_cidr(eni_id, cidr, is_prefix=prefix)
        except DatastoreError:
            pass

    # ---------------------------------------------------------------------------------- cycle
    def update_ip_pool_if_required(self) -> None:
        pool.update_if_required(self)

    def run_cycle(self) -> None:
        """One pool-manager iteration: 2.5 s, pool decisions, 2.5 s, reconcile (and, hourly, leaks)."""
        if not self.config.provisioning_disabled:
            self.clock.sleep(POOL_MONITOR_INTERVAL / 2)
            self.update_ip_pool_if_required()
        self.clock.sleep(POOL_MONITOR_INTERVAL / 2)
        reconcile.node_ip_pool_reconcile(self, NODE_IP_POOL_RECONCILE_INTERVAL)
        if not self.config.leaked_eni_cleanup_disabled and self.clock.now() >= self._leaked_check_at:
            reconcile.cleanup_leaked_enis(self)
            self._leaked_check_at = self.clock.now() + LEAKED_ENI_INTERVAL

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.terminating:
            try:
                self.run_cycle()
            except ClientError as err:
                self.error("poolCycle", f"ipamd cycle failed: {err}")

    def stop(self) -> None:
        """SIGTERM: no ENI or address is attached or detached after this."""
        self.terminating = True
