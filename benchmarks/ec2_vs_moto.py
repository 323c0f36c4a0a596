"""The same boto3 call mix against minieks' EC2 server and moto's server, side by side.

Prints calls per second per phase for both and the ratio (target: minieks at least 3× moto),
then two in-process figures: AssignPrivateIpAddresses per second (target 50,000/s) and one
tag-filtered DescribeNetworkInterfaces with 2,000 ENIs present (target under 20 ms).

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/ec2_vs_moto.py [--enis 1000]
Each server runs in its own process on 127.0.0.1, one at a time, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import boto3

INSTANCES = 10
INSTANCE_TYPE = "m5.24xlarge"   # 15 ENIs, 50 addresses each


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def minieks_server():
    proc = subprocess.Popen([sys.executable, "-m", "minieks.cli", "ec2", "serve", "--port", "0", "--seed", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://\S+", proc.stdout.readline()).group(0)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def moto_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(url: str):
    return boto3.client("ec2", endpoint_url=url, region_name="ap-northeast-2",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def timed(label: str, results: dict, calls: list) -> None:
    start = time.perf_counter()
    for call in calls:
        call()
    elapsed = time.perf_counter() - start
    results[label] = (len(calls), elapsed)


def call_mix(url: str, enis: int) -> dict[str, tuple[int, float]]:
    ec2 = client(url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/17", AvailabilityZone="ap-northeast-2a")["Subnet"]
    nodes = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-12c6146b", InstanceType=INSTANCE_TYPE, MinCount=INSTANCES, MaxCount=INSTANCES,
        SubnetId=subnet["SubnetId"])["Instances"]]
    results: dict[str, tuple[int, float]] = {}
    created: list[str] = []

    def create(n: int):
        return lambda: created.append(ec2.create_network_interface(
            SubnetId=subnet["SubnetId"], Description=f"aws-K8S-{nodes[n % INSTANCES]}",
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
                {"Key": "node.k8s.amazonaws.com/instance_id", "Value": nodes[n % INSTANCES]}]}]
        )["NetworkInterface"]["NetworkInterfaceId"])

    timed("create ENI", results, [create(n) for n in range(enis)])
    attach_calls = []
    for n, node in enumerate(nodes):
        for device in range(1, 15):
            eni = created[n * 14 + device - 1]
            attach_calls.append(lambda eni=eni, node=node, device=device: ec2.attach_network_interface(
                NetworkInterfaceId=eni, InstanceId=node, DeviceIndex=device))
    timed("attach ENI", results, attach_calls)
    assigned: dict[str, list[str]] = {}

    def assign(eni: str):
        def go():
            out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=2)
            assigned[eni] = [a["PrivateIpAddress"] for a in out["AssignedPrivateIpAddresses"]]
        return go

    targets = created[:200]
    timed("assign 2 addresses", results, [assign(e) for e in targets])
    timed("unassign addresses", results, [
        (lambda e=e: ec2.unassign_private_ip_addresses(NetworkInterfaceId=e, PrivateIpAddresses=assigned[e]))
        for e in targets])
    timed("tag-filtered describe", results, [
        (lambda node=node: ec2.describe_network_interfaces(Filters=[
            {"Name": "tag:node.k8s.amazonaws.com/instance_id", "Values": [node]},
            {"Name": "status", "Values": ["available"]}])) for node in nodes * 5])
    return results


def in_process_figures() -> None:
    from minieks.ec2.service import Ec2Service

    svc = Ec2Service(seed=1)
    vpc = svc.call("CreateVpc", {"CidrBlock": "10.0.0.0/16"})["Vpc"]["VpcId"]
    subnet = svc.call("CreateSubnet", {"VpcId": vpc, "CidrBlock": "10.0.0.0/16",
                                       "AvailabilityZone": "ap-northeast-2a"})["Subnet"]["SubnetId"]
    run = svc.call("RunInstances", {"ImageId": "ami-1", "InstanceType": INSTANCE_TYPE, "MinCount": 1, "MaxCount": 1,
                                    "SubnetId": subnet})
    eni_ids = [run["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]]
    for device in range(1, 15):
        eni = svc.call("CreateNetworkInterface", {"SubnetId": subnet})["NetworkInterface"]["NetworkInterfaceId"]
        svc.call("AttachNetworkInterface", {"NetworkInterfaceId": eni, "InstanceId": run["Instances"][0]["InstanceId"],
                                            "DeviceIndex": device})
        eni_ids.append(eni)
    calls, elapsed = 0, 0.0
    for _ in range(10):
        given: dict[str, list[str]] = {e: [] for e in eni_ids}
        start = time.perf_counter()
        for _slot in range(49):
            for eni in eni_ids:
                out = svc.call("AssignPrivateIpAddresses", {"NetworkInterfaceId": eni,
                                                            "SecondaryPrivateIpAddressCount": 1})
                given[eni].append(out["AssignedPrivateIpAddresses"][0]["PrivateIpAddress"])
        elapsed += time.perf_counter() - start
        calls += 49 * len(eni_ids)
        for eni, ips in given.items():
            svc.call("UnassignPrivateIpAddresses", {"NetworkInterfaceId": eni, "PrivateIpAddresses": ips})
    print(f"in-process AssignPrivateIpAddresses: {calls / elapsed:,.0f} calls/s "
          f"({calls} calls, target 50,000/s)")

    for n in range(2000):
        svc.call("CreateNetworkInterface", {"SubnetId": subnet, "TagSpecifications": [
            {"ResourceType": "network-interface", "Tags": [{"Key": "node", "Value": f"n{n % 100}"}]}]})
    samples = []
    for n in range(50):
        start = time.perf_counter()
        found = svc.call("DescribeNetworkInterfaces", {"Filters": [{"Name": "tag:node", "Values": [f"n{n}"]}]})
        samples.append(time.perf_counter() - start)
        assert len(found["NetworkInterfaces"]) == 20
    samples.sort()
    print(f"in-process tag-filtered DescribeNetworkInterfaces at {len(svc.state.enis)} ENIs: "
          f"median {samples[len(samples) // 2] * 1000:.2f} ms, worst {samples[-1] * 1000:.2f} ms (target < 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enis", type=int, default=1000)
    args = parser.parse_args()
    with minieks_server() as url:
        ours = call_mix(url, args.enis)
    with moto_server() as url:
        theirs = call_mix(url, args.enis)
    print(f"{'phase':24s} {'calls':>6s} {'minieks calls/s':>16s} {'moto calls/s':>13s} {'ratio':>6s}")
    total_ours = total_theirs = 0.0
    total_calls = 0
    for phase, (calls, ours_s) in ours.items():
        theirs_s = theirs[phase][1]
        total_ours += ours_s
        total_theirs += theirs_s
        total_calls += calls
        print(f"{phase:24s} {calls:6d} {calls / ours_s:16,.0f} {calls / theirs_s:13,.0f} {theirs_s / ours_s:5.1f}×")
    print(f"{'all':24s} {total_calls:6d} {total_calls / total_ours:16,.0f} {total_calls / total_theirs:13,.0f} "
          f"{total_theirs / total_ours:5.1f}×  (target ≥ 3×)")
    in_process_figures()


if __name__ == "__main__":
    main()
