"""`minieks ipamd run` as a process against `minieks ec2`'s HTTP server: gRPC, introspection,
metrics, checkpoint across a restart, and injected EC2 failures surfacing in metrics."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from minieks.cni.ipamd_client import IpamdClient
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.server import start_in_thread
from minieks.ec2.service import Ec2Service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ec2_endpoint():
    service = Ec2Service(seed=2, placement="lowest")
    server = start_in_thread(service)
    ec2 = InProcessEc2Client(service)
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="192.168.1.0/24", AvailabilityZone="ap-northeast-2a")["Subnet"]
    instance = ec2.run_instances(ImageId="ami-1", InstanceType="t3.medium", MinCount=1, MaxCount=1,
                                 SubnetId=subnet["SubnetId"])["Instances"][0]["InstanceId"]
    yield service, server.url, instance
    server.close()


class Daemon:
    def __init__(self, tmp_path, url, instance, extra_env=None):
        self.socket = str(tmp_path / "ipamd.sock")
        self.intro = free_port()
        self.metrics = free_port()
        env = dict(os.environ, ENABLE_IPv4="true", INTROSPECTION_BIND_ADDRESS=f"127.0.0.1:{self.intro}",
                   AWS_VPC_K8S_CNI_BACKING_STORE=str(tmp_path / "ipam.json"), CLUSTER_NAME="myeks",
                   **(extra_env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "minieks.cli", "ipamd", "run", "--endpoint-url", url,
                                      "--instance-id", instance, "--socket", self.socket,
                                      "--metrics-port", str(self.metrics), "--max-pods", "17"],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"ipamd did not start: {self.proc.stdout.read()}")
            time.sleep(0.05)
        while True:
            try:
                self.get(self.metrics, "/metrics")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def get(self, port, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.read().decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def add(sock, n):
    with IpamdClient(sock) as client:
        return client.add_network(K8S_POD_NAME=f"pod-{n}", K8S_POD_NAMESPACE="default",
                                  K8S_POD_INFRA_CONTAINER_ID=f"c{n}", ContainerID=f"c{n}", IfName="eth0",
                                  NetworkName="aws-cni", Netns=f"/run/netns/x{n}")


def test_daemon_serves_pods_and_keeps_them_across_a_restart(tmp_path, ec2_endpoint):
    service, url, instance = ec2_endpoint
    daemon = Daemon(tmp_path, url, instance)
    try:
        reply = add(daemon.socket, 1)
        assert reply.Success and reply.IPAllocationMetadata[0].IPv4Addr.startswith("192.168.1.")
        assert list(reply.VPCv4CIDRs) == ["192.168.0.0/16"]
        enis = json.loads(daemon.get(daemon.intro, "/v1/enis"))
        assert enis["0"]["AssignedIPs"] == 1 and enis["0"]["TotalIPs"] == 5
        metrics = daemon.get(daemon.metrics, "/metrics")
        assert "awscni_add_ip_req_count 1" in metrics
        assert "awscni_assigned_ip_addresses 1" in metrics
        assert 'awscni_ec2api_req_count{fn="AssignPrivateIpAddresses"} 1' in metrics
    finally:
        assert daemon.stop() == 0
    assert not os.path.exists(daemon.socket)
    first_ip = reply.IPAllocationMetadata[0].IPv4Addr
    checkpoint = json.loads((tmp_path / "ipam.json").read_text())
    assert checkpoint["version"] == "vpc-cni-ipam/1"
    assert [a["ipv4"] for a in checkpoint["allocations"]] == [first_ip]

    again = Daemon(tmp_path, url, instance)
    try:
        assert add(again.socket, 1).IPAllocationMetadata[0].IPv4Addr == first_ip       # same sandbox, same IP
        assert add(again.socket, 2).IPAllocationMetadata[0].IPv4Addr != first_ip
    finally:
        assert again.stop() == 0


def test_throttling_delays_the_pool_and_shows_in_metrics(tmp_path, ec2_endpoint):
    service, url, instance = ec2_endpoint
    # 3 attempts of the first call fail (the SDK retries throttling), then the 1-address retry gets through
    service.faults.add("AssignPrivateIpAddresses", "RequestLimitExceeded", "Request limit exceeded.", count=4)
    daemon = Daemon(tmp_path, url, instance, extra_env={"WARM_IP_TARGET": "1"})
    try:
        deadline = time.time() + 30
        while True:
            metrics = daemon.get(daemon.metrics, "/metrics")
            if "awscni_total_ip_addresses 1" in metrics:
                break
            assert time.time() < deadline, metrics
            time.sleep(0.5)
        assert 'awscni_aws_api_error_count{api="AssignPrivateIpAddresses",error="RequestLimitExceeded"}' in metrics
        assert service.calls.get("AssignPrivateIpAddresses") == 1     # only the successful one reached the model
        assert add(daemon.socket, 1).Success
    finally:
        daemon.stop()
