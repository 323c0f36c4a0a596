"""The EC2 HTTP front end with real clients: boto3 and the `aws` CLI against a fake service
(the Ec2Service contract) and against the real Ec2Service."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from minieks.ec2.errors import Ec2Error
from minieks.ec2.server import Ec2HttpServer, make_server, start_in_thread

WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)


class FakeFaults:
    """Records faults as Ec2Service.faults is driven; the fake service raises them."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []

    def add(self, action: str, code: str | None = None, message: str = "", count: int | None = None,
            probability: float | None = None, delay: float | None = None,
            status: int | None = None) -> None:
        if code is None and delay is None:
            raise ValueError("a fault needs an error code, a delay, or both")
        self.rules.append({"action": action, "code": code, "message": message, "count": count,
                           "probability": probability, "delay": delay, "status": status})

    def clear(self) -> None:
        self.rules.clear()

    def list(self) -> list[dict[str, Any]]:
        return list(self.rules)


class FakeService:
    """Answers each action with a canned output or handler; records every call's params."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.outputs: dict[str, dict[str, Any] | Callable[[dict[str, Any]], Any]] = {}
        self.faults = FakeFaults()

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((action, params))
        for rule in self.faults.rules:
            if rule["action"] == action and rule["count"] != 0:
                if rule["count"] is not None:
                    rule["count"] -= 1
                raise Ec2Error(rule["code"], rule["message"] or "injected")
        answer = self.outputs.get(action, {})
        return answer(params) if callable(answer) else answer

    @property
    def last(self) -> tuple[str, dict[str, Any]]:
        return self.calls[-1]


def boto3_client(server: Ec2HttpServer) -> Any:
    """A boto3 EC2 client against the server: dummy credentials, no retries."""
    return boto3.client("ec2", endpoint_url=server.url, region_name="ap-northeast-2",
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Ec2HttpServer, FakeService]]:
    fake_service = FakeService()
    server = start_in_thread(fake_service)
    yield server, fake_service
    server.close()


@pytest.fixture
def server(served: tuple[Ec2HttpServer, FakeService]) -> Ec2HttpServer:
    return served[0]


@pytest.fixture
def fake(served: tuple[Ec2HttpServer, FakeService]) -> FakeService:
    """The served fake, reset for each test."""
    fake_service = served[1]
    fake_service.calls.clear()
    fake_service.outputs.clear()
    fake_service.faults.clear()
    return fake_service


@pytest.fixture
def client(server: Ec2HttpServer) -> Any:
    return boto3_client(server)


def request(server: Ec2HttpServer, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_form(server: Ec2HttpServer, pairs: dict[str, str]) -> tuple[int, bytes]:
    return request(server, "POST", "/", urlencode(pairs).encode(),
                   {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def strip(response: dict[str, Any]) -> dict[str, Any]:
    response.pop("ResponseMetadata")
    return response


def test_create_network_interface_round_trip(client: Any, fake: Any) -> None:
    eni = {"NetworkInterfaceId": "eni-1", "SubnetId": "subnet-1", "Status": "available",
           "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.4", "Primary": True},
                                  {"PrivateIpAddress": "10.0.0.5", "Primary": False}],
           "TagSet": [{"Key": "cluster.k8s.amazonaws.com/name", "Value": "lab"}]}
    fake.outputs["CreateNetworkInterface"] = {"NetworkInterface": eni}
    params = {"SubnetId": "subnet-1", "Description": "aws-K8S-i-1", "Groups": ["sg-1"],
              "SecondaryPrivateIpAddressCount": 1,
              "TagSpecifications": [{"ResourceType": "network-interface",
                                     "Tags": [{"Key": "node.k8s.amazonaws.com/instance_id",
                                               "Value": "i-1"}]}]}
    assert strip(client.create_network_interface(**params)) == {"NetworkInterface": eni}
    action, received = fake.last
    received.pop("ClientToken", None)
    assert (action, received) == ("CreateNetworkInterface", params)


def test_describe_with_filters_and_pagination(client: Any, fake: Any) -> None:
    pages = {None: {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1"}], "NextToken": "p2"},
             "p2": {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-2",
                                           "Attachment": {"AttachTime": WHEN, "DeviceIndex": 1}}]}}
    fake.outputs["DescribeNetworkInterfaces"] = lambda params: pages[params.get("NextToken")]
    paginator = client.get_paginator("describe_network_interfaces")
    filters = [{"Name": "tag-key", "Values": ["node.k8s.amazonaws.com/instance_id"]},
               {"Name": "status", "Values": ["available"]}]
    found = [eni for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": 5})
             for eni in page["NetworkInterfaces"]]
    assert [e["NetworkInterfaceId"] for e in found] == ["eni-1", "eni-2"]
    assert found[1]["Attachment"]["AttachTime"] == WHEN
    assert fake.calls[0][1] == {"Filters": filters, "MaxResults": 5}
    assert fake.calls[1][1] == {"Filters": filters, "MaxResults": 5, "NextToken": "p2"}


def test_instance_types_and_action_without_output(client: Any, fake: Any) -> None:
    record = {"InstanceType": "m5.large", "NetworkInfo": {"MaximumNetworkInterfaces": 3,
                                                          "Ipv4AddressesPerInterface": 10}}
    fake.outputs["DescribeInstanceTypes"] = {"InstanceTypes": [record]}
    assert strip(client.describe_instance_types(InstanceTypes=["m5.large"])) == {"InstanceTypes": [record]}
    assert fake.last == ("DescribeInstanceTypes", {"InstanceTypes": ["m5.large"]})
    client.unassign_private_ip_addresses(NetworkInterfaceId="eni-1", PrivateIpAddresses=["10.0.0.9"])
    assert fake.last == ("UnassignPrivateIpAddresses",
                         {"NetworkInterfaceId": "eni-1", "PrivateIpAddresses": ["10.0.0.9"]})


@pytest.mark.parametrize("code, message, status", [
    ("InvalidSubnetID.NotFound", "The subnet ID 'subnet-9' does not exist", 400),
    ("UnauthorizedOperation", "You are not authorized to perform this operation.", 403),
    ("RequestLimitExceeded", "Request limit exceeded.", 503),
])
def test_service_errors_surface_as_client_errors(client: Any, fake: Any, code: str, message: str,
                                                 status: int) -> None:
    def fail(params: dict[str, Any]) -> None:
        raise Ec2Error(code, message, status)

    fake.outputs["CreateNetworkInterface"] = fail
    with pytest.raises(ClientError) as caught:
        client.create_network_interface(SubnetId="subnet-9")
    assert caught.value.response["Error"] == {"Code": code, "Message": message}
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_internal_error(client: Any, fake: Any) -> None:
    fake.outputs["DescribeSubnets"] = lambda params: 1 / 0
    with pytest.raises(ClientError) as caught:
        client.describe_subnets()
    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_unknown_action_and_parameter_on_the_wire(server: Ec2HttpServer, fake: Any) -> None:
    status, body = post_form(server, {"Action": "LaunchRocket", "Version": "2016-11-15"})
    assert status == 400
    assert b"<Code>InvalidAction</Code><Message>The action LaunchRocket is not valid for this " \
           b"web service.</Message>" in body
    status, body = post_form(server, {"Action": "DescribeSubnets", "Version": "2016-11-15",
                                      "Filter.1.Name": "vpc-id", "Filter.1.Colour": "red"})
    assert status == 400
    assert b"<Code>UnknownParameter</Code><Message>The parameter Colour is not recognized" in body
    assert fake.calls == []


def test_get_with_query_string(server: Ec2HttpServer, fake: Any) -> None:
    fake.outputs["DescribeSubnets"] = {"Subnets": [{"SubnetId": "subnet-1"}]}
    status, body = request(server, "GET", "/?" + urlencode(
        {"Action": "DescribeSubnets", "Version": "2016-11-15", "SubnetId.1": "subnet-1"}))
    assert status == 200
    assert b"<subnetSet><item><subnetId>subnet-1</subnetId></item></subnetSet>" in body
    assert fake.last == ("DescribeSubnets", {"SubnetIds": ["subnet-1"]})


def test_keep_alive_serves_many_requests_on_one_connection(server: Ec2HttpServer, fake: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = urlencode({"Action": "DescribeSubnets", "Version": "2016-11-15"})
    try:
        for _ in range(3):
            conn.request("POST", "/", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            assert response.status == 200 and response.getheader("Connection") is None
            response.read()
    finally:
        conn.close()
    assert len(fake.calls) == 3


def test_admin_faults(server: Ec2HttpServer, client: Any, fake: Any) -> None:
    fault = {"action": "AssignPrivateIpAddresses", "code": "InsufficientFreeAddressesInSubnet",
             "message": "The specified subnet has an insufficient number of free addresses.",
             "count": 1}
    status, _ = request(server, "POST", "/_minieks/faults", json.dumps(fault).encode())
    assert status == 200
    assert fake.faults.rules == [{**fault, "probability": None, "delay": None, "status": None}]
    with pytest.raises(ClientError) as caught:
        client.assign_private_ip_addresses(NetworkInterfaceId="eni-1", SecondaryPrivateIpAddressCount=1)
    assert caught.value.response["Error"]["Code"] == "InsufficientFreeAddressesInSubnet"
    client.assign_private_ip_addresses(NetworkInterfaceId="eni-1", SecondaryPrivateIpAddressCount=1)

    request(server, "POST", "/_minieks/faults", json.dumps({"action": "X", "delay": 0.5}).encode())
    status, listed = request(server, "GET", "/_minieks/faults")
    assert status == 200 and [f["action"] for f in json.loads(listed)["faults"]] == [
        "AssignPrivateIpAddresses", "X"]
    assert request(server, "DELETE", "/_minieks/faults")[0] == 200
    assert fake.faults.rules == []


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"action": "X"}', b'{"code": "Y"}',
                                  b'{"action": "X", "code": "Y", "colour": "red"}'])
def test_admin_faults_rejects_bad_input(server: Ec2HttpServer, fake: Any, body: bytes) -> None:
    status, answer = request(server, "POST", "/_minieks/faults", body)
    assert status == 400 and "error" in json.loads(answer)
    assert fake.faults.rules == []


def test_health_and_unknown_admin_path(server: Ec2HttpServer) -> None:
    assert request(server, "GET", "/_minieks/health") == (200, b'{"status": "ok"}')
    assert request(server, "GET", "/_minieks/nothing")[0] == 404


def test_close_cuts_keep_alive_connections_and_frees_the_port() -> None:
    server = start_in_thread(FakeService())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/_minieks/health")
    conn.getresponse().read()
    server.close()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/_minieks/health")
        conn.getresponse().read()
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    server.close()  # idempotent


def test_make_server_binds_loopback_without_serving() -> None:
    server = make_server(FakeService())
    try:
        assert server.server_address[0] == "127.0.0.1" and server.port > 0
    finally:
        server.shutdown()  # never served: must not block
        server.close()


def test_aws_cli_prints_a_table(server: Ec2HttpServer, fake: Any, tmp_path: Path) -> None:
    fake.outputs["DescribeInstanceTypes"] = {"InstanceTypes": [{
        "InstanceType": "m5.large", "NetworkInfo": {"MaximumNetworkInterfaces": 3,
                                                    "Ipv4AddressesPerInterface": 10}}]}
    aws = Path(sys.executable).with_name("aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_CONFIG_FILE": str(tmp_path / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "AWS_PAGER": ""}
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [str(aws), "ec2", "describe-instance-types", "--instance-types", "m5.large",
         "--endpoint-url", server.url, "--region", "ap-northeast-2", "--output", "table"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "DescribeInstanceTypes" in done.stdout and "m5.large" in done.stdout
    assert "MaximumNetworkInterfaces" in done.stdout
    assert fake.last == ("DescribeInstanceTypes", {"InstanceTypes": ["m5.large"]})


def comparable(value: Any) -> Any:
    """Drop response metadata; timestamps at EC2's millisecond precision, in UTC."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, dt.datetime):
        return "<timestamp>"        # the two worlds are built a moment apart: compare everything else
    return value


def test_real_service_over_http_matches_in_process_client() -> None:
    """The same seeded world built over HTTP and in process answers identically."""
    from tests.ec2.helpers import seed_world

    from minieks.clock import VirtualClock
    from minieks.ec2.client import InProcessEc2Client
    from minieks.ec2.service import Ec2Service

    def world(make_client: Callable[[Ec2Service], Any] | None) -> list[Any]:
        service = Ec2Service(seed=7, placement="lowest", clock=VirtualClock())
        server = start_in_thread(service)
        try:
            ec2 = make_client(service) if make_client is not None else boto3_client(server)
            _, subnets, instances = seed_world(ec2)
            eni = ec2.create_network_interface(
                SubnetId=subnets[0], Description="aws-K8S-i-1",
                TagSpecifications=[{"ResourceType": "network-interface",
                                    "Tags": [{"Key": "node.k8s.amazonaws.com/instance_id",
                                              "Value": instances[0]}]}])["NetworkInterface"]
            eni_id = eni["NetworkInterfaceId"]
            assigned = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id,
                                                       SecondaryPrivateIpAddressCount=3)
            ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instances[0],
                                         DeviceIndex=1)
            with pytest.raises(ClientError) as caught:
                ec2.create_network_interface(SubnetId="subnet-0000000000000dead")
            return [eni, assigned,
                    ec2.describe_network_interfaces(Filters=[
                        {"Name": "tag-key", "Values": ["node.k8s.amazonaws.com/instance_id"]}]),
                    ec2.describe_subnets(SubnetIds=subnets[:2]),
                    ec2.describe_instances(InstanceIds=instances[:1]),
                    ec2.describe_instance_types(InstanceTypes=["t3.medium"]),
                    caught.value.response["Error"]]
        finally:
            server.close()

    over_http = world(None)
    in_process = world(InProcessEc2Client)
    assert comparable(over_http) == comparable(in_process)
    assert len(over_http[2]["NetworkInterfaces"][0]["PrivateIpAddresses"]) == 4
    assert over_http[-1]["Code"] == "InvalidSubnetID.NotFound"
