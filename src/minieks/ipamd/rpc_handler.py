"""ipamd's side of CNI ADD and DEL (upstream pkg/ipamd/rpc_handler.go; spec §7.3, §7.4, §9).

The handler turns AddNetwork/DelNetwork requests into datastore assignments and releases and
builds the replies the plugin acts on. It knows nothing about sockets: rpc_server.py serves it
over gRPC, and the planner can call it in process with the same protobuf messages. It makes no
EC2 calls; what the pool loop must do after a DEL (PD-mode /32 clean-up) is handed to a hook.

Errors that upstream returns as gRPC statuses raise `RpcStatusError`; everything else, including
IP exhaustion, is a reply with Success=false, as upstream answers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import grpc

from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Assignment, Datastore, DatastoreError, Release, UnknownPodError
from minieks.ipamd.eni import IPAMKey, IPAMMetadata
from minieks.ipamd.rpc import VERSION, rpc_pb2  # VERSION: upstream's, the plugin sends it, ipamd refuses another

log = logging.getLogger("ipamd")

REASON_POD_DELETED = "PodDeleted"
REASON_SETUP_NS_FAILED = "SetupNSFailed"


class RpcStatusError(Exception):
    """An error upstream returns as a gRPC status (not as Success=false); str() is the message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def multierror_text(errors: Sequence[Exception]) -> str:
    """hashicorp/go-multierror's Error(): how upstream's DelNetwork error reads on the wire."""
    word = "error" if len(errors) == 1 else "errors"
    points = "".join(f"\t* {err}\n" for err in errors)
    return f"{len(errors)} {word} occurred:\n{points}\n"


def _noop(*_args: object) -> None:
    return None


@dataclass
class RpcHooks:
    """Plain callables the handler calls, so metrics (and the pool loop) can share its events."""

    add_ip_request: Callable[[], None] = _noop            # awscni_add_ip_req_count
    del_ip_request: Callable[[str], None] = _noop         # awscni_del_ip_req_count{reason}
    # after a successful DelNetwork, per released address (PD-mode /32 clean-up, annotations)
    released: Callable[[Datastore, Release], None] = _noop
    # after a successful AddNetwork, per assigned address (ANNOTATE_POD_IP)
    assigned: Callable[[Datastore, Assignment, rpc_pb2.AddNetworkRequest], None] = _noop


@dataclass(frozen=True)
class NodeInfo:
    """What GetNetworkPolicyConfigs tells the network policy agent about this node."""

    ipv4: str = ""
    ipv6: str = ""
    instance_id: str = ""
    region: str = ""


Datastores = Datastore | Sequence[Datastore] | Mapping[int, Datastore]
Cidrs = Sequence[str] | Callable[[], Sequence[str]]


def datastore_list(datastores: Datastores) -> list[Datastore]:
    """One datastore per managed network card, in card order (upstream's DataStoreAccess)."""
    if isinstance(datastores, Datastore):
        return [datastores]
    items = list(datastores.values()) if isinstance(datastores, Mapping) else list(datastores)
    return sorted(items, key=lambda ds: ds.network_card)


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _alloc_text(allocs: Sequence[rpc_pb2.IPAllocationMetadata]) -> str:
    """Go's %+v of the allocation slice, close enough for a log line."""
    return "[" + " ".join(
        f"IPv4Addr:{a.IPv4Addr} IPv6Addr:{a.IPv6Addr} DeviceNumber:{a.DeviceNumber} "
        f"RouteTableId:{a.RouteTableId}" for a in allocs) + "]"


@dataclass
class RpcHandler:
    """CNIBackend and ConfigServerBackend over the node's datastores.

    `vpc_cidrs` (and `vpc_v6_cidrs`) may be a list or a function returning the current list:
    ipamd re-reads them from IMDS every 30 s. `node_lock` returns a context manager held around
    each datastore change, so the pool loop can keep a request out while it reshapes the pool.
    """

    datastores: Datastores
    config: IpamdConfig = field(default_factory=IpamdConfig)
    vpc_cidrs: Cidrs = ()
    vpc_v6_cidrs: Cidrs = ()
    node_lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    hooks: RpcHooks = field(default_factory=RpcHooks)
    server_version: str = VERSION
    node: NodeInfo = field(default_factory=NodeInfo)

    @property
    def cards(self) -> list[Datastore]:
        return datastore_list(self.datastores)

    @property
    def ipv6(self) -> bool:
        """The cluster's family: IPv6 when enabled (IPv4 and IPv6 never run together)."""
        return self.config.enable_ipv6 and not self.config.enable_ipv4

    # --- version ----------------------------------------------------------------------------

    def _check_version(self, client_version: str) -> None:
        if client_version != self.server_version:
            raise RpcStatusError(grpc.StatusCode.FAILED_PRECONDITION,
                                 f'wrong client version "{client_version}" (!= "{self.server_version}")')

    # --- AddNetwork ---------------------------------------------------------------------------

    def add_network(self, request: rpc_pb2.AddNetworkRequest) -> rpc_pb2.AddNetworkReply:
        """Assign one address per required network card; Success=false when the pool is empty."""
        log.info("Received AddNetwork for NS %s, Sandbox %s, ifname %s",
                 request.Netns, request.ContainerID, request.IfName)
        log.debug("AddNetworkRequest: %s", _one_line(request))
        self.hooks.add_ip_request()
        try:
            self._check_version(request.ClientVersion)
        except RpcStatusError as err:
            log.warning("Rejecting AddNetwork request: %s", err)
            raise
        allocs, error = self._assign(request)
        if error is not None:
            log.error("Returning failure response for AddNetwork: %s", error)
            return self._send(rpc_pb2.AddNetworkReply(Success=False), error)
        reply = rpc_pb2.AddNetworkReply(Success=True, IPAllocationMetadata=allocs,
                                        NetworkPolicyMode=self.config.network_policy_enforcing_mode)
        if self.ipv6:
            reply.VPCv6CIDRs.extend(self._cidrs(self.vpc_v6_cidrs))
        else:
            reply.VPCv4CIDRs.extend(self._cidrs(self.vpc_cidrs))
            reply.UseExternalSNAT = self.config.external_snat
            if not self.config.external_snat:
                reply.VPCv4CIDRs.extend(self.config.exclude_snat_cidrs)
        return self._send(reply, None)

    def _assign(self, request: rpc_pb2.AddNetworkRequest
                ) -> tuple[list[rpc_pb2.IPAllocationMetadata], str | None]:
        if not (request.ContainerID and request.IfName and request.NetworkName):
            return [], f"Unable to generate IPAMKey from {_one_line(request)}"
        cards = self.cards
        required = 1
        if request.RequiresMultiNICAttachment:
            if not self.config.enable_multi_nic:
                return [], "multi-NIC attachment requested but multi-NIC support is not enabled"
            required = len(cards)
        key = IPAMKey(request.NetworkName, request.ContainerID, request.IfName)
        metadata = IPAMMetadata(k8s_pod_namespace=request.K8S_POD_NAMESPACE,
                                k8s_pod_name=request.K8S_POD_NAME,
                                interfaces_count=required if required > 1 else 0)
        allocs: list[rpc_pb2.IPAllocationMetadata] = []
        done: list[tuple[Datastore, Assignment]] = []
        last_error = "AssignPodIPAddress: no available IP/Prefix addresses"
        with self.node_lock():
            for ds in cards:
                try:
                    got = (ds.assign_pod_ipv6_address(key, metadata) if self.ipv6
                           else ds.assign_pod_ipv4_address(key, metadata))
                except DatastoreError as err:
                    log.warning("Failed to assign IPs from network card %d: %s", ds.network_card, err)
                    last_error = str(err)
                    continue
                done.append((ds, got))
                allocs.append(rpc_pb2.IPAllocationMetadata(
                    IPv4Addr="" if self.ipv6 else got.ip, IPv6Addr=got.ip if self.ipv6 else "",
                    DeviceNumber=got.device_number, RouteTableId=got.route_table_id))
                if len(allocs) == required:
                    break
            if len(allocs) != required:
                for ds, _ in done:  # a multi-NIC pod gets all its addresses or none
                    with contextlib.suppress(DatastoreError):
                        ds.unassign_pod_ip_address(key)
                return [], last_error
        for ds, got in done:
            self.hooks.assigned(ds, got, request)
        return allocs, None

    def _send(self, reply: rpc_pb2.AddNetworkReply, error: str | None) -> rpc_pb2.AddNetworkReply:
        log.info("Send AddNetworkReply: Success: %s, IPAllocationMetadata: %s, PodVlanId: %d, "
                 "NetworkPolicyMode: %s, err: %s", _go_bool(reply.Success),
                 _alloc_text(reply.IPAllocationMetadata), reply.PodVlanId,
                 reply.NetworkPolicyMode, error if error is not None else "<nil>")
        return reply

    @staticmethod
    def _cidrs(cidrs: Cidrs) -> list[str]:
        return list(cidrs() if callable(cidrs) else cidrs)

    # --- DelNetwork ---------------------------------------------------------------------------

    def del_network(self, request: rpc_pb2.DelNetworkRequest) -> rpc_pb2.DelNetworkReply:
        """Release the pod's addresses; an unknown pod is a gRPC error the plugin treats as done."""
        log.info("Received DelNetwork for Sandbox %s", request.ContainerID)
        log.debug("DelNetworkRequest: %s", _one_line(request))
        self.hooks.del_ip_request(request.Reason)
        try:
            self._check_version(request.ClientVersion)
        except RpcStatusError as err:
            log.warning("Rejecting DelNetwork request: %s", err)
            raise
        if not (request.ContainerID and request.IfName and request.NetworkName):
            log.error("Unable to generate IPAMKey from %s", _one_line(request))
            return rpc_pb2.DelNetworkReply(Success=False)
        key = IPAMKey(request.NetworkName, request.ContainerID, request.IfName)
        errors: list[Exception] = []
        released: list[tuple[Datastore, Release]] = []
        with self.node_lock():
            for ds in self.cards:
                try:
                    got = ds.unassign_pod_ip_address(key)
                except DatastoreError as err:
                    if not isinstance(err, UnknownPodError):
                        log.warning("Failed to unassign IP from network card %d: %s",
                                    ds.network_card, err)
                    errors.append(err)
                    continue
                released.append((ds, got))
                if len(released) >= got.interfaces_count:
                    break
        if not released:
            text = multierror_text(errors or [UnknownPodError()])
            log.info("Send DelNetworkReply: IPAllocationMetadata: [], err: %s", text)
            raise RpcStatusError(grpc.StatusCode.UNKNOWN, text)
        allocs = [rpc_pb2.IPAllocationMetadata(
            IPv4Addr="" if ":" in got.ip else got.ip, IPv6Addr=got.ip if ":" in got.ip else "",
            DeviceNumber=got.device_number, RouteTableId=got.route_table_id) for _, got in released]
        for ds, got in released:
            self.hooks.released(ds, got)
        reply = rpc_pb2.DelNetworkReply(Success=True, IPAllocationMetadata=allocs,
                                        NetworkPolicyMode=self.config.network_policy_enforcing_mode)
        log.info("Send DelNetworkReply: IPAllocationMetadata: %s, err: <nil>", _alloc_text(allocs))
        return reply

    # --- ConfigServerBackend ------------------------------------------------------------------

    def get_network_policy_configs(self) -> rpc_pb2.NetworkPolicyAgentConfigReply:
        """What the network policy agent asks ipamd at start-up."""
        return rpc_pb2.NetworkPolicyAgentConfigReply(
            NetworkPolicyMode=self.config.network_policy_enforcing_mode,
            MultiNICEnabled=self.config.enable_multi_nic, NodeIPv4=self.node.ipv4,
            NodeIPv6=self.node.ipv6, InstanceID=self.node.instance_id, Region=self.node.region)


def _one_line(message: object) -> str:
    """protobuf's text form on one line, as Go's %s of a message prints it."""
    return " ".join(str(message).split("\n")).strip()
