"""ipamd metrics (spec §8.2): upstream's names, types and labels in Go's text format, datastore
gauges that match the datastore, a registry per ipamd, and /metrics on 127.0.0.1."""

import re
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from minieks.clock import VirtualClock
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.metrics import IpamdMetrics, MetricsServer, go_float
from minieks.ipamd.rpc import rpc_pb2
from minieks.ipamd.rpc_handler import VERSION, RpcHandler, RpcStatusError

# §8.2: name → (type, labels)
SPEC = {
    "awscni_ipamd_error_count": ("counter", {"fn"}),
    "awscni_ipamd_action_inprogress": ("gauge", {"fn"}),
    "awscni_eni_max": ("gauge", set()),
    "awscni_ip_max": ("gauge", set()),
    "awscni_reconcile_count": ("counter", {"fn"}),
    "awscni_add_ip_req_count": ("counter", set()),
    "awscni_del_ip_req_count": ("counter", {"reason"}),
    "awscni_pod_eni_error_count": ("counter", {"fn"}),
    "awscni_aws_api_latency_ms": ("summary", {"api", "error", "status"}),
    "awscni_aws_api_error_count": ("counter", {"api", "error"}),
    "awscni_aws_utils_error_count": ("counter", {"fn", "error"}),
    "awscni_ec2api_req_count": ("counter", {"fn"}),
    "awscni_ec2api_error_count": ("counter", {"fn"}),
    "awscni_eni_allocated": ("gauge", set()),
    "awscni_total_ip_addresses": ("gauge", set()),
    "awscni_assigned_ip_addresses": ("gauge", set()),
    "awscni_force_removed_enis": ("counter", set()),
    "awscni_force_removed_ips": ("counter", set()),
    "awscni_total_ipv4_prefixes": ("gauge", set()),
    "awscni_assigned_ip_per_cidr": ("gauge", {"cidr"}),
    "awscni_no_available_ip_addresses": ("counter", set()),
    "awscni_assigned_ip_per_eni": ("gauge", {"eni"}),
    "awscni_ipamd_startup_duration_seconds": ("histogram", {"success", "with_api_server", "failure_reason"}),
    "awscni_ipamd_node_initialization_duration_seconds": ("histogram", {"success"}),
    "awscni_connmark_backend": ("gauge", {"backend"}),
    "awscni_connmark_reconcile_total": ("counter", {"result"}),
    "awscni_build_info": ("gauge", {"version", "goversion"}),
}


def node():
    """A node with two ENIs: five /32s on eni-1, one /28 on eni-2; two pods, one failed ADD."""
    ds = Datastore(VirtualClock(1_700_000_000.0), unix_offset=0)
    ds.add_eni("eni-1", 0, is_primary=True)
    for n in range(5, 10):
        ds.add_ipv4_cidr("eni-1", f"10.0.0.{n}/32")
    ds.add_eni("eni-2", 1)
    ds.add_ipv4_cidr("eni-2", "10.0.1.16/28", is_prefix=True)
    handler = RpcHandler(ds, IpamdConfig(enable_ipv4=True), vpc_cidrs=["10.0.0.0/16"])
    metrics = IpamdMetrics(ds, process_metrics=False)
    handler.hooks = metrics.rpc_hooks()
    return ds, handler, metrics


def add(handler, container):
    return handler.add_network(rpc_pb2.AddNetworkRequest(
        ContainerID=container, IfName="eth0", NetworkName="aws-cni", ClientVersion=VERSION))


def delete(handler, container, reason="PodDeleted"):
    return handler.del_network(rpc_pb2.DelNetworkRequest(
        ContainerID=container, IfName="eth0", NetworkName="aws-cni", ClientVersion=VERSION, Reason=reason))


def exercise(metrics):
    """Touch every labelled metric once, as the pool loop and the EC2 port will."""
    metrics.ipamd_error("increaseIPPoolAllocENI")
    metrics.reconcile("eniReconcileAdd")
    metrics.pod_eni_error_count.labels("nodeInit").inc()
    metrics.aws_api_call("AssignPrivateIpAddresses", 42.0, error="InsufficientFreeAddressesInSubnet",
                         status="400")
    metrics.aws_utils_error_count.labels("allocENI", "CreateNetworkInterface").inc()
    metrics.ec2_request("CreateNetworkInterface", failed=True)
    metrics.startup_duration.labels("true", "false", "").observe(3.2)
    metrics.node_init_duration.labels("true").observe(1.1)
    metrics.set_connmark_backend("iptables")
    metrics.set_limits(3, 15)
    with metrics.action("increaseDatastorePool"):
        inside = sample(metrics, "awscni_ipamd_action_inprogress", fn="increaseDatastorePool")
    return inside


def families(metrics):
    return {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}


def sample(metrics, name, **labels):
    for line in metrics.render().decode().splitlines():
        if line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        sname, _, label_text = series.partition("{")
        got = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if sname == name and got == labels:
            return float(value)
    raise KeyError((name, labels))


def test_every_spec_metric_with_upstream_type_and_labels():
    _, handler, metrics = node()
    add(handler, "c-1")
    delete(handler, "c-1")
    exercise(metrics)
    text = metrics.render().decode()
    for name, (mtype, labels) in SPEC.items():
        assert f"# TYPE {name} {mtype}\n" in text, name
        lines = [line for line in text.splitlines() if re.match(rf"{name}(_bucket|_sum|_count)?[{{ ]", line)]
        assert lines, name
        for line in lines:
            got = set(re.findall(r'(\w+)="', line.partition("{")[2])) - {"le", "quantile"}
            assert got == labels, (name, line)
    # Go's names: no _total added to counters, no _created series
    assert "_created" not in text
    assert "awscni_add_ip_req_count_total" not in text
    assert "awscni_connmark_reconcile_total_total" not in text


def test_datastore_gauges_match_the_datastore():
    ds, handler, metrics = node()
    for n in range(3):
        add(handler, f"c-{n}")
    delete(handler, "c-1", reason="SetupNSFailed")
    assert sample(metrics, "awscni_eni_allocated") == len(ds.enis()) == 2
    assert sample(metrics, "awscni_total_ip_addresses") == ds.total == 21
    assert sample(metrics, "awscni_assigned_ip_addresses") == ds.assigned == 2
    assert sample(metrics, "awscni_total_ipv4_prefixes") == ds.allocated_prefixes == 1
    assert sample(metrics, "awscni_assigned_ip_per_eni", eni="eni-1") == 2
    assert sample(metrics, "awscni_assigned_ip_per_eni", eni="eni-2") == 0
    assert sample(metrics, "awscni_assigned_ip_per_cidr", cidr="10.0.0.5/32") == 1
    assert sample(metrics, "awscni_assigned_ip_per_cidr", cidr="10.0.0.6/32") == 0
    assert sample(metrics, "awscni_add_ip_req_count") == 3
    assert sample(metrics, "awscni_del_ip_req_count", reason="SetupNSFailed") == 1


def test_failed_assignments_and_force_removals_are_counted():
    ds, handler, metrics = node()
    for n in range(5):
        assert add(handler, f"c-{n}").Success
    assert not add(handler, "c-5").Success
    assert sample(metrics, "awscni_no_available_ip_addresses") == 1
    with pytest.raises(RpcStatusError):
        delete(handler, "nobody")
    assert sample(metrics, "awscni_del_ip_req_count", reason="PodDeleted") == 1
    ds.del_ipv4_cidr("eni-1", "10.0.0.5/32", force=True)
    assert sample(metrics, "awscni_force_removed_ips") == 1
    assert sample(metrics, "awscni_total_ip_addresses") == ds.total == 20


def test_hooks_and_helpers():
    _, _, metrics = node()
    assert exercise(metrics) == 1
    assert sample(metrics, "awscni_ipamd_action_inprogress", fn="increaseDatastorePool") == 0
    assert sample(metrics, "awscni_eni_max") == 3 and sample(metrics, "awscni_ip_max") == 15
    assert sample(metrics, "awscni_aws_api_error_count", api="AssignPrivateIpAddresses",
                  error="InsufficientFreeAddressesInSubnet") == 1
    assert sample(metrics, "awscni_aws_api_latency_ms_sum", api="AssignPrivateIpAddresses",
                  error="true", status="400") == 42
    assert sample(metrics, "awscni_connmark_reconcile_total", result="success") == 0
    assert sample(metrics, "awscni_ipamd_startup_duration_seconds_bucket", success="true",
                  with_api_server="false", failure_reason="", le="5") == 1
    info = [line for line in metrics.render().decode().splitlines() if line.startswith("awscni_build_info{")]
    assert len(info) == 1 and f'version="{VERSION}"' in info[0] and info[0].endswith(" 1")


def test_text_parses_as_prometheus_and_is_sorted():
    _, _, metrics = node()
    exercise(metrics)
    parsed = families(metrics)
    assert "awscni_assigned_ip_addresses" in parsed
    names = [line.split()[2] for line in metrics.render().decode().splitlines() if line.startswith("# TYPE")]
    assert names == sorted(names)


def test_registries_are_per_ipamd():
    _, handler_a, metrics_a = node()
    _, _, metrics_b = node()
    add(handler_a, "c-1")
    assert sample(metrics_a, "awscni_add_ip_req_count") == 1
    assert sample(metrics_b, "awscni_add_ip_req_count") == 0


@pytest.mark.parametrize("value,text", [
    (0, "0"), (1, "1"), (2.5, "2.5"), (0.001, "0.001"), (0.00001, "1e-05"), (123456, "123456"),
    (1e6, "1e+06"), (1234567, "1.234567e+06"), (float("inf"), "+Inf"), (-3, "-3")])
def test_go_float(value, text):
    assert go_float(value) == text


def test_served_on_loopback():
    ds, handler, metrics = node()
    add(handler, "c-1")
    server = MetricsServer(IpamdMetrics(ds), port=0, host="127.0.0.1")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.bound_port}"
        with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
            assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = answer.read().decode()
        assert "awscni_assigned_ip_addresses 1\n" in text
        assert "process_resident_memory_bytes " in text
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "/", timeout=5)
        assert err.value.code == 404
    finally:
        server.stop()
