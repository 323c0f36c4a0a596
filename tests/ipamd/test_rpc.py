"""ipamd's AddNetwork/DelNetwork (spec §7.3-7.5, §9): the upstream rpc_handler_test vectors in
process, then real gRPC round trips over a unix socket with the plugin's client."""

import logging
import os
import pathlib
import stat

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from minieks.clock import VirtualClock
from minieks.cni.ipamd_client import IpamdCallError, IpamdClient, go_code_name
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.rpc import rpc_pb2
from minieks.ipamd.rpc_handler import VERSION, NodeInfo, RpcHandler, RpcHooks, RpcStatusError
from minieks.ipamd.rpc_server import HEALTH_SERVICE_NAME, RpcServer

VECTORS = yaml.safe_load((pathlib.Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
ADD = VECTORS["rpc_add_network"]

# TestServer_AddNetwork's fixture values that the vectors leave implicit
UPSTREAM_VPC_CIDRS = ["10.10.0.0/16"]
UPSTREAM_SNAT_EXCLUSIONS = ["10.12.0.0/16", "10.13.0.0/16"]
ONE_IP = {0: {"eni-1": {"ips": ["192.168.1.100"], "device": 0, "primary": True}}}
T0 = 1_700_000_000.0


def build_datastores(layout, clock=None, pd=False):
    clock = clock or VirtualClock(T0)
    stores = []
    for card, enis in sorted((layout or {}).items()):
        ds = Datastore(clock, network_card=int(card), pd_enabled=pd, unix_offset=0)
        for eni_id, spec in (enis or {}).items():
            ds.add_eni(eni_id, spec["device"], is_primary=spec.get("primary", False))
            for ip in spec.get("ips", []):
                ds.add_ipv4_cidr(eni_id, f"{ip}/32")
        stores.append(ds)
    return stores


def add_request(container="c-1", ifname="eth0", network="aws-cni", **fields):
    fields.setdefault("ClientVersion", VERSION)
    return rpc_pb2.AddNetworkRequest(ContainerID=container, IfName=ifname, NetworkName=network,
                                     K8S_POD_NAME="pod", K8S_POD_NAMESPACE="default", **fields)


def del_request(container="c-1", ifname="eth0", network="aws-cni", reason="PodDeleted", **fields):
    fields.setdefault("ClientVersion", VERSION)
    return rpc_pb2.DelNetworkRequest(ContainerID=container, IfName=ifname, NetworkName=network,
                                     Reason=reason, **fields)


def handler_for(datastores, **config):
    config.setdefault("enable_ipv4", True)
    return RpcHandler(datastores, IpamdConfig(**config), vpc_cidrs=UPSTREAM_VPC_CIDRS)


# --- the rpc_handler_test vectors ---------------------------------------------------------------

def case_setup(case):
    """A vector's datastores and config; cases without them take the upstream test's defaults."""
    layout = case.get("datastores", ONE_IP)
    multi = case.get("requires_multi_nic_attachment", "multi-NIC" in case["name"])
    config = dict(external_snat=case.get("external_snat", False),
                  exclude_snat_cidrs=tuple(case.get("exclude_snat_cidrs", UPSTREAM_SNAT_EXCLUSIONS)),
                  enable_multi_nic=case.get("enable_multi_nic", False))
    return layout, multi, config


@pytest.mark.parametrize("case", ADD["cases"], ids=[c["name"] for c in ADD["cases"]])
def test_add_network_vectors(case):
    layout, multi, config = case_setup(case)
    handler = handler_for(build_datastores(layout), **config)
    reply = handler.add_network(add_request(RequiresMultiNICAttachment=multi))
    expected = case["expected"]
    assert reply.Success is expected.get("Success", True)
    if "IPAllocationMetadata" in expected:
        got = [{"IPv4Addr": a.IPv4Addr, "DeviceNumber": a.DeviceNumber, "RouteTableId": a.RouteTableId}
               for a in reply.IPAllocationMetadata]
        want = [{"IPv4Addr": a["IPv4Addr"], "DeviceNumber": a.get("DeviceNumber", got[i]["DeviceNumber"]),
                 "RouteTableId": a.get("RouteTableId", got[i]["RouteTableId"])}
                for i, a in enumerate(expected["IPAllocationMetadata"])]
        assert got == want
    if "VPCv4CIDRs" in expected:
        assert list(reply.VPCv4CIDRs) == expected["VPCv4CIDRs"]
    if "UseExternalSNAT" in expected:
        assert reply.UseExternalSNAT is expected["UseExternalSNAT"]


VERSION_CASES = ADD["version_check"]["cases"]


@pytest.mark.parametrize("case", VERSION_CASES, ids=[f"{c['client_version']}-{c['request']}" for c in VERSION_CASES])
def test_version_check_vectors(case):
    handler = handler_for(build_datastores(ONE_IP))
    handler.server_version = case["server_version"]
    if case["request"] == "AddNetwork":
        request = add_request(ClientVersion=case["client_version"])
        if case.get("expected") == "ok":
            assert handler.add_network(request).Success
            return
        with pytest.raises(RpcStatusError) as err:
            handler.add_network(request)
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert f"rpc error: code = {go_code_name(err.value.code)} desc = {err.value}" == case["expected_error"]
    else:
        with pytest.raises(RpcStatusError) as err:
            handler.del_network(del_request(ClientVersion=case["client_version"]))
        assert str(err.value) == case["expected_error"]


# --- more of the handler ------------------------------------------------------------------------

@pytest.mark.parametrize("blank", ["ContainerID", "IfName", "NetworkName"])
def test_empty_key_field_is_a_failure_reply(blank):
    handler = handler_for(build_datastores(ONE_IP))
    request = add_request()
    setattr(request, blank, "")
    assert handler.add_network(request).Success is False
    assert handler.cards[0].assigned == 0
    delete = del_request()
    setattr(delete, blank, "")
    assert handler.del_network(delete).Success is False


def test_exhaustion_logs_upstream_lines(caplog):
    handler = handler_for(build_datastores({0: {"eni-1": {"ips": [], "device": 0, "primary": True}}}))
    with caplog.at_level(logging.INFO):
        reply = handler.add_network(add_request())
    assert not reply.Success and not reply.IPAllocationMetadata and not reply.VPCv4CIDRs
    text = caplog.text
    assert "DataStore has no available IP/Prefix addresses" in text
    assert ("Failed to assign IPs from network card 0: AssignPodIPAddress: "
            "no available IP/Prefix addresses") in text
    assert "Returning failure response for AddNetwork: " in text
    assert "Send AddNetworkReply: Success: false" in text
    assert {r.name for r in caplog.records if "AddNetwork" in r.getMessage()} == {"ipamd"}
    assert handler.cards[0].no_available_ip_count == 1


def test_add_is_idempotent_and_del_releases_into_cooldown():
    clock = VirtualClock(T0)
    (ds,) = build_datastores({0: {"eni-1": {"ips": ["10.0.0.5", "10.0.0.6"], "device": 0, "primary": True}}},
                             clock)
    handler = handler_for(ds, network_policy_enforcing_mode="standard")
    first = handler.add_network(add_request())
    assert handler.add_network(add_request()).IPAllocationMetadata == first.IPAllocationMetadata
    assert first.NetworkPolicyMode == "standard"
    assert ds.assigned == 1
    reply = handler.del_network(del_request())
    assert reply.Success and reply.NetworkPolicyMode == "standard"
    assert [(a.IPv4Addr, a.DeviceNumber, a.RouteTableId) for a in reply.IPAllocationMetadata] == [
        ("10.0.0.5", 0, 254)]
    assert ds.assigned == 0 and ds.ip_stats().cooldown_ips == 1
    # the cooled-down address is skipped for the next pod
    assert handler.add_network(add_request("c-2")).IPAllocationMetadata[0].IPv4Addr == "10.0.0.6"


def test_multi_nic_pod_gets_all_addresses_or_none():
    layout = {0: {"eni-1": {"ips": ["192.168.1.100"], "device": 0, "primary": True}}, 1: {}}
    handler = handler_for(build_datastores(layout), enable_multi_nic=True)
    assert handler.add_network(add_request(RequiresMultiNICAttachment=True)).Success is False
    assert handler.cards[0].assigned == 0  # card 0's address was handed back


def test_multi_nic_del_releases_every_card():
    layout = {0: {"eni-1": {"ips": ["192.168.1.100"], "device": 0, "primary": True}},
              1: {"eni-2": {"ips": ["192.168.16.100"], "device": 1}}}
    handler = handler_for(build_datastores(layout), enable_multi_nic=True)
    assert handler.add_network(add_request(RequiresMultiNICAttachment=True)).Success
    reply = handler.del_network(del_request())
    assert [a.IPv4Addr for a in reply.IPAllocationMetadata] == ["192.168.1.100", "192.168.16.100"]
    assert [a.RouteTableId for a in reply.IPAllocationMetadata] == [254, 10101]
    assert all(ds.assigned == 0 for ds in handler.cards)


def test_single_ip_pod_on_second_card_is_found_by_del():
    layout = {0: {}, 1: {"eni-1": {"ips": ["192.168.1.100"], "device": 0}}}
    handler = handler_for(build_datastores(layout))
    assert handler.add_network(add_request()).Success
    reply = handler.del_network(del_request())
    assert reply.Success and reply.IPAllocationMetadata[0].IPv4Addr == "192.168.1.100"


def test_unknown_pod_on_two_cards_is_a_two_error_multierror():
    handler = handler_for(build_datastores({0: {}, 1: {}}))
    with pytest.raises(RpcStatusError) as err:
        handler.del_network(del_request())
    assert err.value.code == grpc.StatusCode.UNKNOWN
    assert str(err.value) == ("2 errors occurred:\n\t* datastore: unknown pod\n"
                              "\t* datastore: unknown pod\n\n")


def test_hooks_count_requests_by_reason_and_see_assignments():
    events = []
    hooks = RpcHooks(add_ip_request=lambda: events.append("add"),
                     del_ip_request=lambda reason: events.append(f"del:{reason}"),
                     assigned=lambda ds, got, request: events.append(f"assigned:{got.ip}"),
                     released=lambda ds, got: events.append(f"released:{got.ip}"))
    handler = handler_for(build_datastores(ONE_IP))
    handler.hooks = hooks
    handler.add_network(add_request())
    handler.del_network(del_request(reason="SetupNSFailed"))
    with pytest.raises(RpcStatusError):
        handler.del_network(del_request())
    with pytest.raises(RpcStatusError):  # counted even when the version is refused, as upstream
        handler.add_network(add_request(ClientVersion="old"))
    assert events == ["add", "assigned:192.168.1.100", "del:SetupNSFailed",
                      "released:192.168.1.100", "del:PodDeleted", "add"]


def test_node_lock_is_held_around_datastore_changes():
    held = []

    class Lock:
        def __enter__(self):
            held.append("enter")

        def __exit__(self, *exc):
            held.append("exit")

    handler = handler_for(build_datastores(ONE_IP))
    handler.node_lock = Lock
    handler.add_network(add_request())
    handler.del_network(del_request())
    assert held == ["enter", "exit", "enter", "exit"]


def test_vpc_cidrs_are_read_per_request():
    cidrs = ["10.10.0.0/16"]
    handler = RpcHandler(build_datastores(ONE_IP), IpamdConfig(enable_ipv4=True), vpc_cidrs=lambda: cidrs)
    cidrs.append("100.64.0.0/16")
    assert list(handler.add_network(add_request()).VPCv4CIDRs) == ["10.10.0.0/16", "100.64.0.0/16"]


def test_ipv6_pods_get_v6_addresses_and_vpc_v6_cidrs():
    ds = Datastore(VirtualClock(T0), pd_enabled=True, unix_offset=0)
    ds.add_eni("eni-1", 0, is_primary=True)
    ds.add_ipv6_cidr("eni-1", "2001:db8:0:1::/80")
    handler = RpcHandler(ds, IpamdConfig(enable_ipv6=True, enable_prefix_delegation=True),
                         vpc_v6_cidrs=["2001:db8::/56"])
    reply = handler.add_network(add_request())
    assert reply.Success and reply.IPAllocationMetadata[0].IPv6Addr == "2001:db8:0:1::"
    assert reply.IPAllocationMetadata[0].IPv4Addr == "" and list(reply.VPCv6CIDRs) == ["2001:db8::/56"]
    assert not reply.VPCv4CIDRs
    assert handler.del_network(del_request()).IPAllocationMetadata[0].IPv6Addr == "2001:db8:0:1::"


def test_network_policy_configs():
    handler = RpcHandler(build_datastores(ONE_IP),
                         IpamdConfig(enable_ipv4=True, enable_multi_nic=True,
                                     network_policy_enforcing_mode="strict"),
                         node=NodeInfo(ipv4="10.0.0.10", instance_id="i-0abc", region="us-west-2"))
    reply = handler.get_network_policy_configs()
    assert (reply.NetworkPolicyMode, reply.MultiNICEnabled, reply.NodeIPv4, reply.NodeIPv6,
            reply.InstanceID, reply.Region) == ("strict", True, "10.0.0.10", "", "i-0abc", "us-west-2")


# --- over gRPC on a unix socket -----------------------------------------------------------------

@pytest.fixture
def socket_path(tmp_path_factory):
    # a short directory: unix socket paths are limited to 108 bytes
    return str(tmp_path_factory.mktemp("rpc") / "run" / "ipamd.sock")


@pytest.fixture
def warm(socket_path):
    """A server over a datastore with three warm /32s."""
    (ds,) = build_datastores({0: {"eni-1": {"ips": ["10.0.0.5", "10.0.0.6", "10.0.0.7"], "device": 0,
                                            "primary": True},
                                  "eni-2": {"ips": [], "device": 1}}})
    server = RpcServer(handler_for(ds, exclude_snat_cidrs=("10.12.0.0/16",)), socket_path)
    server.start()
    yield server
    server.stop()


def test_round_trip_add_and_del(warm):
    ds = warm.handler.cards[0]
    with IpamdClient(warm.socket_path, timeout=5) as client:
        reply = client.add_network(add_request())
        assert reply.Success
        assert [(a.IPv4Addr, a.DeviceNumber, a.RouteTableId) for a in reply.IPAllocationMetadata] == [
            ("10.0.0.5", 0, 254)]
        assert list(reply.VPCv4CIDRs) == ["10.10.0.0/16", "10.12.0.0/16"] and not reply.UseExternalSNAT
        assert ds.assigned == 1
        released = client.del_network(del_request())
        assert released.Success and released.IPAllocationMetadata[0].IPv4Addr == "10.0.0.5"
    assert ds.assigned == 0


def test_round_trip_exhaustion_is_a_failure_reply(warm):
    with IpamdClient(warm.socket_path, timeout=5) as client:
        for n in range(3):
            assert client.add_network(add_request(f"c-{n}")).Success
        reply = client.add_network(add_request("c-3"))
    assert reply.Success is False and len(reply.IPAllocationMetadata) == 0


def test_round_trip_unknown_pod(warm):
    with IpamdClient(warm.socket_path, timeout=5) as client, pytest.raises(IpamdCallError) as err:
        client.del_network(del_request("never-added"))
    assert err.value.code == grpc.StatusCode.UNKNOWN and err.value.unknown_pod
    assert str(err.value) == "rpc error: code = Unknown desc = 1 error occurred:\n\t* datastore: unknown pod\n\n"


def test_round_trip_version_mismatch(warm):
    expected = VERSION_CASES[2]
    warm.handler.server_version = expected["server_version"]
    with IpamdClient(warm.socket_path, timeout=5, client_version=expected["client_version"]) as client:
        with pytest.raises(IpamdCallError) as err:
            client.add_network(add_request(ClientVersion=""))
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert str(err.value) == expected["expected_error"]


def test_health_reflection_and_config_server(warm):
    with grpc.insecure_channel(f"unix:{warm.socket_path}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in (HEALTH_SERVICE_NAME, ""):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {"rpc.CNIBackend", "rpc.ConfigServerBackend", "grpc.health.v1.Health"} <= services
        from google.protobuf import empty_pb2

        from minieks.ipamd.rpc import rpc_pb2_grpc
        reply = rpc_pb2_grpc.ConfigServerBackendStub(channel).GetNetworkPolicyConfigs(
            empty_pb2.Empty(), timeout=5)
        assert reply.MultiNICEnabled is False


def test_socket_is_0660_and_a_stale_one_is_replaced(socket_path):
    os.makedirs(os.path.dirname(socket_path))
    pathlib.Path(socket_path).write_text("stale")
    server = RpcServer(handler_for(build_datastores(ONE_IP)), socket_path)
    server.start()
    try:
        mode = os.stat(socket_path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
        with IpamdClient(socket_path, timeout=5) as client:
            assert client.add_network(add_request()).Success
    finally:
        server.stop()
    assert not os.path.exists(socket_path)


def test_no_ipamd_is_unavailable_with_the_plugin_wording(socket_path):
    with IpamdClient(f"unix://{socket_path}", timeout=5) as client, pytest.raises(IpamdCallError) as err:
        client.add_network(add_request())
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    text = f"add cmd: Error received from AddNetwork gRPC call: {err.value}"
    assert text.startswith("add cmd: Error received from AddNetwork gRPC call: "
                           "rpc error: code = Unavailable desc = ")
    assert not err.value.unknown_pod


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.parametrize("code,name", [
    (grpc.StatusCode.UNAVAILABLE, "Unavailable"), (grpc.StatusCode.CANCELLED, "Canceled"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "DeadlineExceeded"),
    (grpc.StatusCode.FAILED_PRECONDITION, "FailedPrecondition"), (grpc.StatusCode.UNKNOWN, "Unknown")])
def test_format_rpc_error_reads_as_go(code, name):
    assert str(IpamdCallError.from_rpc_error(FakeRpcError(code, "boom"))) == f"rpc error: code = {name} desc = boom"
