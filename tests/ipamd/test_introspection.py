"""Introspection (spec §8.1): upstream's JSON shapes, served on 127.0.0.1 and on a unix socket."""

import http.client
import json
import logging
import socket
import urllib.error
import urllib.request

import pytest

from minieks.clock import VirtualClock
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.eni import IPAMKey, IPAMMetadata
from minieks.ipamd.introspection import (Introspection, enis_document, go_time, go_time_ns,
                                         parse_bind_address)

T0 = 1_700_000_000.0
PATHS = ["/v1/eni-configs", "/v1/enis", "/v1/ipamd-env-settings", "/v1/networkutils-env-settings"]


@pytest.fixture
def datastore():
    clock = VirtualClock(T0)
    ds = Datastore(clock, unix_offset=0)
    ds.add_eni("eni-1", 0, is_primary=True, subnet_id="subnet-1")
    ds.add_ipv4_cidr("eni-1", "10.0.0.5/32")
    ds.add_ipv4_cidr("eni-1", "10.0.0.6/32")
    ds.add_eni("eni-2", 1, subnet_id="subnet-1")
    ds.add_ipv4_cidr("eni-2", "10.0.1.16/28", is_prefix=True)
    ds.assign_pod_ipv4_address(IPAMKey("aws-cni", "abc123", "eth0"), IPAMMetadata("default", "web-1"))
    ds.assign_pod_ipv4_address(IPAMKey("aws-cni", "def456", "eth0"), IPAMMetadata("default", "web-2"))
    clock.advance(1.5)
    ds.unassign_pod_ip_address(IPAMKey("aws-cni", "def456", "eth0"))
    return ds


def test_enis_shape(datastore):
    doc = enis_document(datastore)
    assert list(doc) == ["0"]
    card = doc["0"]
    assert list(card) == ["TotalIPs", "AssignedIPs", "ENIs"]
    assert (card["TotalIPs"], card["AssignedIPs"]) == (18, 1)
    eni = card["ENIs"]["eni-1"]
    assert list(eni) == ["ID", "IsPrimary", "IsTrunk", "IsEFA", "DeviceNumber", "AvailableIPv4Cidrs",
                         "IPv6Cidrs", "IsExcludedForPodIPs", "RouteTableID", "SubnetID"]
    assert (eni["ID"], eni["IsPrimary"], eni["DeviceNumber"], eni["RouteTableID"], eni["SubnetID"]) == (
        "eni-1", True, 0, 254, "subnet-1")
    assert eni["IPv6Cidrs"] == {}
    cidr = eni["AvailableIPv4Cidrs"]["10.0.0.5/32"]
    assert cidr["Cidr"] == {"IP": "10.0.0.5", "Mask": "/////w=="}
    assert (cidr["IsPrefix"], cidr["AddressFamily"]) == (False, "")
    assert cidr["IPAddresses"]["10.0.0.5"] == {
        "Address": "10.0.0.5",
        "IPAMKey": {"networkName": "aws-cni", "containerID": "", "ifName": ""},
        "IPAMMetadata": {"k8sPodNamespace": "default", "k8sPodName": "web-1"},
        "AssignedTime": "2023-11-14T22:13:20Z",
        "UnassignedTime": "0001-01-01T00:00:00Z",
    }
    released = eni["AvailableIPv4Cidrs"]["10.0.0.6/32"]["IPAddresses"]["10.0.0.6"]
    assert released["IPAMKey"] == {"networkName": "", "containerID": "", "ifName": ""}
    assert released["IPAMMetadata"] == {}
    assert released["UnassignedTime"] == "2023-11-14T22:13:21.5Z"
    prefix = card["ENIs"]["eni-2"]["AvailableIPv4Cidrs"]["10.0.1.16/28"]
    assert prefix["Cidr"] == {"IP": "10.0.1.16", "Mask": "////8A=="} and prefix["IsPrefix"] is True
    assert card["ENIs"]["eni-2"]["RouteTableID"] == 2


def test_keys_sort_as_go_strings():
    clock = VirtualClock(T0)
    cards = [Datastore(clock, network_card=n) for n in (0, 2, 10)]
    cards[0].add_eni("eni-1", 0)
    for cidr in ("10.0.0.9/32", "10.0.0.10/32"):
        cards[0].add_ipv4_cidr("eni-1", cidr)
    doc = enis_document(cards)
    assert list(doc) == ["0", "10", "2"]
    assert list(doc["0"]["ENIs"]["eni-1"]["AvailableIPv4Cidrs"]) == ["10.0.0.10/32", "10.0.0.9/32"]


def test_go_time():
    assert go_time(None) == "0001-01-01T00:00:00Z"
    assert go_time(T0 + 0.25) == "2023-11-14T22:13:20.25Z"
    assert go_time_ns(int(T0) * 10**9 + 123) == "2023-11-14T22:13:20.000000123Z"


@pytest.mark.parametrize("address,expected", [
    ("127.0.0.1:61679", ("127.0.0.1", 61679)), (":61678", ("", 61678)), ("[::1]:80", ("::1", 80)),
    ("unix:/run/x.sock", "/run/x.sock")])
def test_bind_addresses(address, expected):
    assert parse_bind_address(address) == expected


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_served_on_loopback(datastore, caplog):
    config = IpamdConfig(exclude_snat_cidrs=("10.12.0.0/16",), warm_ip_target=3)
    service = Introspection(datastore, config, eni_config_name=lambda: "us-west-2a",
                            address="127.0.0.1:0")
    service.start()
    try:
        with caplog.at_level(logging.INFO, logger="ipamd"):
            status, ctype, body = get(service.port, "/v1/enis")
        assert status == 200 and ctype == "text/plain; charset=utf-8"
        assert json.loads(body) == enis_document(datastore)
        assert b", " not in body and b"\n" not in body  # json.Marshal: compact, one line
        assert "Handling http request: GET, from: 127.0.0.1:" in caplog.text
        assert "URI: /v1/enis" in caplog.text
        assert get(service.port, "/v1/eni-configs")[2] == b'"us-west-2a"'
        assert json.loads(get(service.port, "/v1/ipamd-env-settings")[2]) == {
            "AWS_MANAGE_ENIS_NON_SCHEDULABLE": False, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": False,
            "ENABLE_SUBNET_DISCOVERY": True, "WARM_ENI_TARGET": 1, "WARM_IP_TARGET": 3}
        assert get(service.port, "/v1/networkutils-env-settings")[2] == (
            b'{"AWS_EXTERNAL_SERVICE_CIDRS":null,"AWS_VPC_CNI_NODE_PORT_SUPPORT":true,'
            b'"AWS_VPC_ENI_MTU":9001,"AWS_VPC_K8S_CNI_CONNMARK":128,'
            b'"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":["10.12.0.0/16"],"AWS_VPC_K8S_CNI_EXTERNALSNAT":false,'
            b'"AWS_VPC_K8S_CNI_RANDOMIZESNAT":2,"AWS_VPC_K8S_CNI_VETHPREFIX":"eni"}')
        for path in ("/", "/v1/pods", "/metrics"):
            assert json.loads(get(service.port, path)[2]) == {"AvailableCommands": PATHS}
    finally:
        service.stop()


def test_eni_config_404_when_the_node_cannot_be_read(datastore):
    def unreadable():
        raise ConnectionError("the API server did not answer")

    for getter in (None, unreadable):
        service = Introspection(datastore, eni_config_name=getter, address="127.0.0.1:0")
        service.start()
        try:
            assert get(service.port, "/v1/eni-configs")[0] == 404
        finally:
            service.stop()


def test_served_on_a_unix_socket(datastore, tmp_path_factory):
    path = tmp_path_factory.mktemp("intro") / "introspect.sock"
    service = Introspection(datastore, address=f"unix:{path}")
    service.start()
    try:
        conn = http.client.HTTPConnection("localhost", timeout=5)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.connect(str(path))
        conn.request("GET", "/v1/enis")
        answer = conn.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["0"]["AssignedIPs"] == 1
        conn.close()
    finally:
        service.stop()
    assert not path.exists()
