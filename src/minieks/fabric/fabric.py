"""The fabric follows EC2: what the emulator says exists is made to exist in the kernel.

`Fabric(svc, lab).start()` builds the VPC (router, IGW, stand-in internet, resolver), then a node
namespace per running instance and a port per attached ENI, and from then on applies every EC2
event as it happens (in the thread that made the API call, after EC2's lock is released). It works
level-triggered: each event only names what changed (an instance, an ENI); the fabric rereads that
object's current state and makes the kernel match, so repeated, reordered or missed events do no
harm and a restarted fabric adopts what a previous one left (nodes by their `lo` alias, ports by
theirs). Kernel errors are recorded in `errors`, never raised into EC2's API call.

Neighbours: ec2/ (the emulator and its events), fabric/vpc.py (the router), fabric/nodes.py
(node namespaces), fabric/names.py (every name), the lab builder (which creates one Fabric per lab
and reads `node_namespace()` to run kubelet and ipamd inside the nodes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from minieks.fabric import netns, nodes, resolv, view
from minieks.fabric.internet import DEFAULT_RECORDS, check_records
from minieks.fabric.names import LabNames, node_ifname, port_name, port_node_index
from minieks.fabric.nodes import NodeSettings
from minieks.fabric.vpc import Port, VpcLayout, VpcRouter, check_igw_mode
from minieks.fabric.view import EniView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    instance_id: str
    index: int
    namespace: str


def search_domain(region: str) -> str:
    """The DNS search domain EC2's default DHCP options give instances of a region."""
    return "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"


def cleanup(lab: str) -> list[str]:
    """Remove every namespace of the lab (killing what runs inside) and its /etc/netns dirs.
    Idempotent and safe after a crash: the `mek-<lab>-` prefix is the only record needed."""
    names = LabNames.of(lab)
    removed = netns.cleanup(names.prefix)
    resolv.remove_all(names.prefix)
    return removed


class Fabric:
    def __init__(self, svc, lab: str, *, vpc_id: str | None = None,
                 records: Mapping[str, tuple[str, ...]] | None = None,
                 settings: NodeSettings = NodeSettings(), igw_mode: str = "eip"):
        self.svc = svc
        self.names = LabNames.of(lab)
        self.igw_mode = check_igw_mode(igw_mode)     # "eip" as AWS; "route" shows VPC sources outside
        self.vpc_id = vpc_id
        self.records = check_records(records if records is not None else DEFAULT_RECORDS)
        self.settings = settings
        self.router: VpcRouter | None = None
        self.nodes: dict[str, Node] = {}          # instance id -> node
        self.ports: dict[str, Port] = {}          # ENI id -> its port in the VPC
        self.errors: list[str] = []
        self.timings: dict[str, list[float]] = defaultdict(list)   # ms per node, per ENI plug, ...
        self._next_index = 0
        self._reassert: set[str] = set()          # adopted ports whose routes are re-asserted once
        self._lock = threading.RLock()
        self._subscribed = False
        self._closed = False

    # ------------------------------------------------------------------------------- life cycle
    def start(self) -> Fabric:
        """Subscribe to EC2, then make the kernel match EC2's current state."""
        with self._lock:
            self._closed = False
            if not self._subscribed:
                self.svc.subscribe(self._on_event)
                self._subscribed = True
            self.reconcile()
        return self

    def close(self) -> None:
        """Stop following EC2 and serving; the namespaces stay (a new Fabric adopts them)."""
        with self._lock:
            self._closed = True
            if self._subscribed:
                try:
                    self.svc._listeners.remove(self._on_event)
                except ValueError:
                    pass
                self._subscribed = False
            if self.router:
                self.router.stop_services()

    def cleanup(self) -> list[str]:
        """close(), then remove the whole lab from the kernel."""
        self.close()
        with self._lock:
            self.nodes.clear()
            self.ports.clear()
            self.router = None
            return cleanup(self.names.lab)

    def __enter__(self) -> Fabric:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # ---------------------------------------------------------------------------------- queries
    def node_namespace(self, instance_id: str) -> str | None:
        node = self.nodes.get(instance_id)
        return node.namespace if node else None

    def node_index(self, instance_id: str) -> int | None:
        node = self.nodes.get(instance_id)
        return node.index if node else None

    @property
    def resolver(self) -> str | None:
        return self.router.layout.resolver if self.router else None

    @property
    def namespaces(self) -> list[str]:
        return netns.list_namespaces(self.names.prefix)

    # -------------------------------------------------------------------------------- reconcile
    def reconcile(self) -> None:
        """Make the kernel match the whole of EC2's state now (start-up, or on demand)."""
        with self._lock:
            snap = view.snapshot(self.svc, self.vpc_id)
            if snap.vpc is None:
                return
            if self.router is None:
                self._build_router(snap.vpc)
                self._adopt()
            live = {i.id: i for i in snap.live_instances()}
            for instance_id in [i for i in self.nodes if i not in live]:
                self._remove_node(instance_id)
            wanted = {e.id: e for i in live for e in snap.enis_of(i)}
            for eni_id in [e for e in self.ports if e not in wanted]:
                self._unplug(eni_id)
            for instance_id in live:
                node = self._ensure_node(instance_id)
                for eni in snap.enis_of(instance_id):
                    self._sync_port(eni, node)
            self.router.set_nat(snap.public_mapping())

    def _build_router(self, vpc: view.VpcView) -> None:
        started = time.perf_counter()
        self.vpc_id = vpc.id
        router = VpcRouter(self.names, VpcLayout(vpc.cidr), self.igw_mode)
        router.build()
        router.start_services(self.records)
        self.router = router
        self.timings["vpc"].append(_ms(started))

    def _adopt(self) -> None:
        """Take over the nodes and ports a previous fabric of this lab left in the kernel."""
        for namespace in netns.list_namespaces(self.names.prefix):
            index = self.names.node_index(namespace)
            if index is None:
                continue
            self._next_index = max(self._next_index, index)
            instance_id = nodes.instance_of(namespace)
            if instance_id and instance_id not in self.nodes:
                self.nodes[instance_id] = Node(instance_id, index, namespace)
            else:                                   # half-made or duplicate: start it afresh
                nodes.delete(namespace)
        self.ports = self.router.existing_ports()
        self._reassert = set(self.ports)

    # ------------------------------------------------------------------------------------ nodes
    def _ensure_node(self, instance_id: str) -> Node:
        node = self.nodes.get(instance_id)
        if node and netns.exists(node.namespace):
            return node
        started = time.perf_counter()
        if node:                                    # its namespace vanished: so did its veths
            for eni_id, port in list(self.ports.items()):
                if port_node_index(port.name) == node.index:
                    self.ports.pop(eni_id)
        else:
            self._next_index += 1
            node = Node(instance_id, self._next_index, self.names.node(self._next_index))
        nodes.create(node.namespace, instance_id, self.settings)
        resolv.write_resolv_conf(node.namespace, self.router.layout.resolver, (search_domain(self.svc.region),))
        self.nodes[instance_id] = node
        self.timings["node"].append(_ms(started))
        return node

    def _remove_node(self, instance_id: str) -> None:
        node = self.nodes.pop(instance_id)
        for eni_id, port in list(self.ports.items()):
            if port_node_index(port.name) == node.index:
                self._unplug(eni_id)
        started = time.perf_counter()
        nodes.delete(node.namespace)
        self.timings["node-delete"].append(_ms(started))

    # ------------------------------------------------------------------------------------ ports
    def _sync_port(self, eni: EniView, node: Node) -> None:
        """The ENI's port exists under the right name and routes exactly the ENI's addresses."""
        name = port_name(node.index, eni.device_index, eni.card)
        port = self.ports.get(eni.id)
        if port and port.name != name:
            self._unplug(eni.id)
            port = None
        ifname = node_ifname(eni.device_index, eni.card)
        if port is None:
            started = time.perf_counter()
            for other, held in list(self.ports.items()):   # a name whose ENI left before we heard
                if held.name == name:
                    self.ports.pop(other)
            port = self.ports[eni.id] = self.router.plug(eni, node.namespace, node.index)
            nodes.configure_link(node.namespace, ifname, eni, self.settings)
            self.timings["eni"].append(_ms(started))
        elif eni.id in self._reassert:
            self._reassert.discard(eni.id)
            nodes.configure_link(node.namespace, ifname, eni, self.settings)
            self.router.route(port, eni, full=True)
        else:
            started = time.perf_counter()
            added, removed = self.router.route(port, eni)
            if added or removed:
                self.timings["routes"].append(_ms(started))

    def _unplug(self, eni_id: str) -> None:
        port = self.ports.pop(eni_id, None)
        if port:
            started = time.perf_counter()
            self.router.unplug(port)
            self.timings["eni-unplug"].append(_ms(started))

    # ----------------------------------------------------------------------------------- events
    def _on_event(self, kind: str, data: dict) -> None:
        if self._closed:
            return
        try:
            with self._lock:
                if self._closed:
                    return
                self._apply(kind, data)
        except Exception as err:   # never fail EC2's API call for a kernel problem: record it
            log.exception("fabric: applying %s %s", kind, data)
            self.errors.append(f"{kind} {data}: {type(err).__name__}: {err}")

    def _apply(self, kind: str, data: dict) -> None:
        if self.router is None:
            if kind == "vpc-created":
                self.reconcile()
            return
        if kind in ("instance-launched", "instance-terminated"):
            self._sync_instance(data["instance_id"])
            self._sync_nat()
        elif kind in ("eni-attached", "eni-detached", "addresses-assigned", "addresses-unassigned"):
            self._sync_eni(data["eni_id"])
        elif kind == "eni-deleted":
            self._sync_eni(data["eni_id"])
            self._sync_nat()

    def _ours(self, instance: view.InstanceView | None) -> bool:
        return bool(instance and instance.live and instance.vpc_id == self.vpc_id)

    def _sync_instance(self, instance_id: str) -> None:
        instance, enis = view.instance(self.svc, instance_id)
        if self._ours(instance):
            node = self._ensure_node(instance_id)
            for eni in enis:
                self._sync_port(eni, node)
        elif instance_id in self.nodes:
            self._remove_node(instance_id)

    def _sync_eni(self, eni_id: str) -> None:
        eni = view.eni(self.svc, eni_id)
        instance = view.instance(self.svc, eni.instance_id)[0] if eni and eni.instance_id else None
        if not self._ours(instance):
            self._unplug(eni_id)
            return
        self._sync_port(eni, self._ensure_node(instance.id))

    def _sync_nat(self) -> None:
        started = time.perf_counter()
        if self.router.set_nat(view.public_mapping(self.svc, self.vpc_id)):
            self.timings["nat"].append(_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
