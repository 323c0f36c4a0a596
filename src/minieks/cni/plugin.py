"""aws-cni: the CNI plugin kubelet execs for `"type": "aws-cni"` (upstream cmd/routed-eni-cni-plugin).

Protocol (CNI 1.0.0, through skel.py): CNI_COMMAND ADD/DEL/CHECK/VERSION, CNI_CONTAINERID,
CNI_NETNS (a /run/netns/mek-... path), CNI_IFNAME, CNI_ARGS (K8S_POD_NAME=...;K8S_POD_NAMESPACE=...),
CNI_PATH; the aws-cni entry of 10-aws.conflist on stdin; result or error JSON on stdout.

The plugin runs with the node's namespace as its own (kubelet: `ip netns exec <node> aws-cni`)
and refuses to run anywhere else, so it can never touch the root namespace. It asks the node's
ipamd (gRPC on MINIEKS_IPAMD_SOCKET, default upstream's /var/run/aws-node/ipamd.sock) for an
address, wires the pod (netsetup.pod_network), and on DEL returns the address and removes the
rules, falling back to prevResult when ipamd cannot be reached (spec §7.3, §7.4, §9).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from minieks.cni import skel
from minieks.cni.args import CniArgsError, K8sArgs, parse_cni_args
from minieks.cni.netconf import NetConf, NetConfError, load_net_conf
from minieks.cni.result import (CniError, ErrorCode, PodAllocation, add_result, allocation_address,
                                teardown_hint)
from minieks.netsetup import names

ENV_IPAMD_SOCKET = "MINIEKS_IPAMD_SOCKET"
ENV_NPA_SOCKET = "MINIEKS_NPA_SOCKET"
ENV_LOG_FILE = "MINIEKS_CNI_LOG_FILE"
DEFAULT_IPAMD_SOCKET = "/var/run/aws-node/ipamd.sock"
DEFAULT_NPA_SOCKET = "/var/run/aws-node/npa.sock"
NPA_TIMEOUT = 2.0
REASON_POD_DELETED = "PodDeleted"
REASON_SETUP_NS_FAILED = "SetupNSFailed"

log = logging.getLogger("aws-cni")


def _internal(msg: str) -> CniError:
    return CniError(ErrorCode.INTERNAL, msg)


# ------------------------------------------------------------------------------------ guards
def node_namespace() -> str:
    """The lab namespace this thread is in; anything else (the root namespace) is refused."""
    from minieks.netsetup.pod_network import current_lab_namespace

    name = current_lab_namespace()
    if name is not None:
        return name
    raise _internal("aws-cni (minieks) only runs inside a lab node namespace "
                    "(ip netns exec mek-LAB-NODE aws-cni); refusing to change this one")


def pod_namespace(path: str, node_ns: str) -> str:
    """CNI_NETNS as a lab namespace name: /run/netns/mek-..., not the node's own."""
    from minieks.fabric import netns

    name = os.path.basename(path)
    real = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path)) or "/"), name)
    try:
        if os.path.dirname(real) != netns.NETNS_DIR or os.path.islink(real):
            raise netns.NetnsError(f"not under {netns.NETNS_DIR}")
        netns.check_name(name)
    except netns.NetnsError as err:
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
                       f"CNI_NETNS {path!r} is not a lab namespace (/run/netns/mek-...)", str(err)) from None
    if name == node_ns:
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, f"CNI_NETNS {path!r} is the node's namespace")
    if not os.path.exists(real):
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, f"CNI_NETNS {path!r} does not exist")
    return name


def _load(args: skel.CmdArgs, verb: str) -> tuple[NetConf, K8sArgs]:
    try:
        conf = load_net_conf(args.stdin)
    except NetConfError as err:
        raise _internal(str(err)) from None
    try:
        k8s = parse_cni_args(args.args)
    except CniArgsError as err:
        suffix = "arg" if verb == "add" else "args"
        raise _internal(f"{verb} cmd: failed to load k8s config from {suffix}: {err}") from None
    return conf, k8s


def _client(env: Mapping[str, str]) -> Any:
    from minieks.cni.ipamd_client import IpamdClient

    return IpamdClient(env.get(ENV_IPAMD_SOCKET) or DEFAULT_IPAMD_SOCKET)


# --------------------------------------------------------------------------------------- ADD
def cmd_add(args: skel.CmdArgs, env: Mapping[str, str]) -> str:
    """AddNetwork, SetupPodNetwork, the result with upstream's overloaded fields (§7.3)."""
    from minieks.cni.ipamd_client import IpamdCallError

    log.info("Received CNI add request: ContainerID(%s) Netns(%s) IfName(%s) Args(%s) Path(%s) "
             "argsStdinData(%s)", args.container_id, args.netns, args.if_name, args.args, args.path,
             args.stdin.decode(errors="replace"))
    conf, k8s = _load(args, "add")
    node_ns = node_namespace()
    pod_ns = pod_namespace(args.netns, node_ns)
    with _client(env) as client:
        try:
            reply = client.add_network(
                K8S_POD_NAME=k8s.K8S_POD_NAME, K8S_POD_NAMESPACE=k8s.K8S_POD_NAMESPACE,
                K8S_POD_INFRA_CONTAINER_ID=k8s.K8S_POD_INFRA_CONTAINER_ID, Netns=args.netns,
                ContainerID=args.container_id, NetworkName=conf.name, IfName=args.if_name,
                RequiresMultiNICAttachment=conf.requires_multi_nic)
        except IpamdCallError as err:
            log.error("Error received from AddNetwork grpc call for containerID %s: %s", args.container_id, err)
            raise _internal(f"add cmd: Error received from AddNetwork gRPC call: {err}") from None
        if not reply.Success:
            log.error("Failed to assign an IP address to container %s", args.container_id)
            raise _internal("add cmd: failed to assign an IP address to container")
        allocations = _allocations(reply)
        try:
            _wire(args, conf, k8s, pod_ns, reply, allocations)
        except Exception as err:  # noqa: BLE001 - any failure must give the address back
            log.error("Failed SetupPodNetwork for container %s: %s", args.container_id, err)
            _release(client, args, conf, k8s)
            raise _internal(f"add command: failed to setup network: {err}") from None
    result = add_result(k8s.K8S_POD_NAMESPACE, k8s.K8S_POD_NAME, args.if_name, args.netns,
                        conf.veth_prefix, allocations, reply.PodVlanId, reply.PodENISubnetGW,
                        conf.cni_version)
    if reply.NetworkPolicyMode:
        _enforce_network_policy(env, k8s, reply.NetworkPolicyMode, len(allocations))
    return result.to_json(conf.cni_version)


def _allocations(reply: Any) -> list[PodAllocation]:
    out = []
    for alloc in reply.IPAllocationMetadata:
        address = allocation_address(alloc.IPv4Addr, alloc.IPv6Addr)
        if address is not None:
            out.append(PodAllocation(address, alloc.RouteTableId, alloc.DeviceNumber))
    return out


def _wire(args: skel.CmdArgs, conf: NetConf, k8s: K8sArgs, pod_ns: str, reply: Any,
          allocations: list[PodAllocation]) -> None:
    from pyroute2 import IPRoute

    from minieks.netsetup.pod_network import PodInterface, PodNetworkError, setup_pod_network

    if reply.PodVlanId:
        raise PodNetworkError("SetupBranchENIPodNetwork: branch ENI pods are not supported by minieks")
    if not allocations or any(":" in a.address for a in allocations):
        raise PodNetworkError("SetupPodNetwork: only IPv4 pod addresses are supported by minieks")
    ifaces = [PodInterface(names.host_veth_name(conf.veth_prefix, k8s.K8S_POD_NAMESPACE, k8s.K8S_POD_NAME, i),
                           names.container_iface_name(args.if_name, i), a.address, a.route_table, i)
              for i, a in enumerate(allocations)]
    with IPRoute() as node:
        setup_pod_network(node, pod_ns, ifaces, conf.pod_mtu)


def _release(client: Any, args: skel.CmdArgs, conf: NetConf, k8s: K8sArgs) -> None:
    """Give the address back after a failed set-up (DelNetwork, Reason SetupNSFailed)."""
    from minieks.cni.ipamd_client import IpamdCallError

    try:
        client.del_network(K8S_POD_NAME=k8s.K8S_POD_NAME, K8S_POD_NAMESPACE=k8s.K8S_POD_NAMESPACE,
                           K8S_POD_INFRA_CONTAINER_ID=k8s.K8S_POD_INFRA_CONTAINER_ID,
                           K8S_POD_UID=k8s.K8S_POD_UID, Reason=REASON_SETUP_NS_FAILED,
                           ContainerID=args.container_id, IfName=args.if_name, NetworkName=conf.name)
    except IpamdCallError as err:
        log.error("Error received from DelNetwork grpc call for container %s: %s", args.container_id, err)


def _np_channel(env: Mapping[str, str]) -> Any:
    import grpc

    from minieks.cni.ipamd_client import socket_target

    return grpc.insecure_channel(socket_target(env.get(ENV_NPA_SOCKET) or DEFAULT_NPA_SOCKET),
                                 options=[("grpc.enable_http_proxy", 0)])


def _enforce_network_policy(env: Mapping[str, str], k8s: K8sArgs, mode: str, count: int) -> None:
    """EnforceNpToPod on the network policy agent (a blocking dial with a 2 s deadline)."""
    import grpc

    from minieks.ipamd.rpc import rpc_pb2, rpc_pb2_grpc

    with _np_channel(env) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=NPA_TIMEOUT)
        except grpc.FutureTimeoutError:
            log.error("Failed to connect to network policy agent: context deadline exceeded")
            raise _internal("add cmd: failed to setup network policy: context deadline exceeded") from None
        try:
            reply = rpc_pb2_grpc.NPBackendStub(channel).EnforceNpToPod(
                rpc_pb2.EnforceNpRequest(K8S_POD_NAME=k8s.K8S_POD_NAME,
                                         K8S_POD_NAMESPACE=k8s.K8S_POD_NAMESPACE,
                                         NETWORK_POLICY_MODE=mode, InterfaceCount=count),
                timeout=NPA_TIMEOUT)
            ok = reply.Success
        except grpc.RpcError:
            ok = False
    if not ok:
        raise _internal("add cmd: failed to setup network policy")


# --------------------------------------------------------------------------------------- DEL
def cmd_del(args: skel.CmdArgs, env: Mapping[str, str]) -> str:
    """DelNetwork and TeardownPodNetwork; idempotent, and prevResult when ipamd is away (§7.4)."""
    from pyroute2 import IPRoute

    from minieks.cni.ipamd_client import IpamdCallError
    from minieks.netsetup.pod_network import (PodNetworkError, teardown_branch_pod_network,
                                              teardown_pod_network)

    log.info("Received CNI del request: ContainerID(%s) Netns(%s) IfName(%s) Args(%s) Path(%s)",
             args.container_id, args.netns, args.if_name, args.args, args.path)
    conf, k8s = _load(args, "del")
    node_namespace()
    hint = None
    if conf.prev_result is not None:
        hint = teardown_hint(conf.prev_result, k8s.K8S_POD_NAMESPACE, k8s.K8S_POD_NAME, args.if_name)
    with IPRoute() as node:
        if hint is not None and hint.vlan_id:
            if args.netns:
                teardown_branch_pod_network(node, hint.address, hint.vlan_id)
            return ""
        with _client(env) as client:
            try:
                reply = client.del_network(
                    K8S_POD_NAME=k8s.K8S_POD_NAME, K8S_POD_NAMESPACE=k8s.K8S_POD_NAMESPACE,
                    K8S_POD_INFRA_CONTAINER_ID=k8s.K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID=k8s.K8S_POD_UID,
                    Reason=REASON_POD_DELETED, ContainerID=args.container_id, IfName=args.if_name,
                    NetworkName=conf.name)
            except IpamdCallError as err:
                if err.unknown_pod:
                    log.info("Container %s not found", args.container_id)
                    return ""
                log.error("Error received from DelNetwork gRPC call for container %s: %s",
                          args.container_id, err)
                _teardown_from_prev_result(node, hint)
                return ""
        if not reply.Success:
            log.error("Failed to process delete request for container %s", args.container_id)
            raise _internal("del cmd: failed to process delete request")
        for alloc in _allocations(reply):
            try:
                teardown_pod_network(node, alloc.address, alloc.route_table)
            except PodNetworkError as err:
                raise _internal(f"del cmd: failed on tear down pod network: {err}") from None
    if reply.NetworkPolicyMode:
        _delete_network_policy(env, k8s)
    return ""


def _teardown_from_prev_result(node: Any, hint: Any) -> None:
    """ipamd unreachable: undo what prevResult describes; DEL still succeeds."""
    from minieks.netsetup.pod_network import PodNetworkError, teardown_pod_network

    if hint is None:
        log.info("no usable prevResult: nothing to tear down without ipamd")
        return
    try:
        teardown_pod_network(node, hint.address, hint.route_table)
    except PodNetworkError as err:
        log.error("Failed to tear down pod network from prevResult: %s", err)


def _delete_network_policy(env: Mapping[str, str], k8s: K8sArgs) -> None:
    import grpc

    from minieks.ipamd.rpc import rpc_pb2, rpc_pb2_grpc

    with _np_channel(env) as channel:
        try:
            rpc_pb2_grpc.NPBackendStub(channel).DeletePodNp(
                rpc_pb2.DeleteNpRequest(K8S_POD_NAME=k8s.K8S_POD_NAME, K8S_POD_NAMESPACE=k8s.K8S_POD_NAMESPACE),
                timeout=NPA_TIMEOUT)
        except grpc.RpcError as err:
            log.error("Failed to delete network policy for pod %s/%s: %s", k8s.K8S_POD_NAMESPACE,
                      k8s.K8S_POD_NAME, err)


# ------------------------------------------------------------------------------------- CHECK
def cmd_check(args: skel.CmdArgs, env: Mapping[str, str]) -> str:
    """The pod still looks as ADD left it (prevResult says which address and table)."""
    from pyroute2 import IPRoute

    from minieks.netsetup.pod_network import PodInterface, PodNetworkError, check_pod_network

    conf, k8s = _load(args, "check")
    node_ns = node_namespace()
    pod_ns = pod_namespace(args.netns, node_ns)
    if conf.prev_result is None:
        raise _internal("check cmd: required prevResult missing")
    hint = teardown_hint(conf.prev_result, k8s.K8S_POD_NAMESPACE, k8s.K8S_POD_NAME, args.if_name)
    if hint is None:
        raise _internal("check cmd: prevResult has no aws-cni interfaces for this pod")
    if hint.vlan_id:
        return ""
    iface = PodInterface(names.host_veth_name(conf.veth_prefix, k8s.K8S_POD_NAMESPACE, k8s.K8S_POD_NAME),
                         args.if_name, hint.address, hint.route_table)
    with IPRoute() as node:
        try:
            check_pod_network(node, pod_ns, iface)
        except PodNetworkError as err:
            raise _internal(f"check cmd: {err}") from None
    return ""


# -------------------------------------------------------------------------------------- main
def run(env: Mapping[str, str], stdin: bytes) -> tuple[int, str]:
    """One plugin invocation in process: (exit code, stdout). The calling thread's namespace
    is the node's, exactly as for the executable."""
    return skel.dispatch(env, stdin, lambda a: cmd_add(a, env), lambda a: cmd_del(a, env),
                         lambda a: cmd_check(a, env))


def _setup_logging(env: Mapping[str, str]) -> None:
    path = env.get(ENV_LOG_FILE)
    handler: logging.Handler = logging.FileHandler(path) if path else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] aws-cni: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def main() -> int:
    """The `aws-cni` executable."""
    env = dict(os.environ)
    _setup_logging(env)
    stdin = b"" if env.get("CNI_COMMAND") == "VERSION" else sys.stdin.buffer.read()
    code, out = run(env, stdin)
    sys.stdout.write(out)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
