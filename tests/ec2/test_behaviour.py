"""Throttling, latency, injected faults, persistence and determinism."""

import threading

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from minieks.clock import VirtualClock
from minieks.ec2.address_space import ip_int
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.latency import Latency
from minieks.ec2.service import Ec2Service
from tests.ec2.helpers import seed_world


def test_throttling_empties_the_bucket_then_refills(clock):
    service = Ec2Service(seed=1, clock=clock, throttling=True)
    ec2 = InProcessEc2Client(service)
    _, [subnet, *_], _ = seed_world(ec2)
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ok = 0
    with pytest.raises(ClientError) as err:
        for _ in range(200):
            ec2.create_tags(Resources=[eni], Tags=[{"Key": "n", "Value": str(ok)}])
            ok += 1
    assert err.value.response["Error"] == {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert ok == 100 - 1          # the bucket is shared with CreateNetworkInterface
    ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])   # another family is unaffected
    clock.advance(1.0)            # 5 tokens a second come back
    for _ in range(5):
        ec2.create_tags(Resources=[eni], Tags=[{"Key": "n", "Value": "again"}])
    with pytest.raises(ClientError):
        ec2.create_tags(Resources=[eni], Tags=[{"Key": "n", "Value": "over"}])


def test_realistic_latency_runs_on_the_given_clock():
    clock = VirtualClock()
    service = Ec2Service(seed=1, clock=clock, latency=Latency("realistic", seed=1))
    ec2 = InProcessEc2Client(service)
    _, [subnet, *_], [node, *_] = seed_world(ec2)
    start = clock.now()
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node, DeviceIndex=1)
    assert 2.5 <= clock.now() - start <= 9.5
    start = clock.now()
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)
    assert 0.3 <= clock.now() - start <= 0.7
    start = clock.now()
    ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])
    assert clock.now() - start < 0.2


def test_injected_faults_by_count_and_probability(service, ec2, clock):
    _, [subnet, *_], _ = seed_world(ec2)
    service.faults.add("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet", "no room", count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            ec2.create_network_interface(SubnetId=subnet)
        assert err.value.response["Error"]["Code"] == "InsufficientFreeAddressesInSubnet"
    ec2.create_network_interface(SubnetId=subnet)
    service.faults.add("DescribeSubnets", delay=4.0)
    start = clock.now()
    ec2.describe_subnets()
    assert clock.now() - start == pytest.approx(4.0)
    service.faults.clear()
    service.faults.add("DescribeVpcs", "RequestLimitExceeded", "Request limit exceeded.", probability=0.5)
    failures = 0
    for _ in range(200):
        try:
            ec2.describe_vpcs()
        except ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            failures += 1
    assert 60 < failures < 140


def state_of(ec2) -> dict:
    enis = ec2.describe_network_interfaces()["NetworkInterfaces"]
    return {
        "subnets": {s["SubnetId"]: s["AvailableIpAddressCount"] for s in ec2.describe_subnets()["Subnets"]},
        "enis": {e["NetworkInterfaceId"]: (sorted(a["PrivateIpAddress"] for a in e["PrivateIpAddresses"]),
                                          sorted(p["Ipv4Prefix"] for p in e.get("Ipv4Prefixes", [])),
                                          e.get("Attachment", {}).get("DeviceIndex"), e["MacAddress"],
                                          sorted((t["Key"], t["Value"]) for t in e["TagSet"])) for e in enis},
        "instances": {i["InstanceId"]: i["State"]["Name"]
                      for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]},
    }


def busy_script(ec2) -> None:
    _, subnets, nodes = seed_world(ec2)
    for node, subnet in zip(nodes, subnets):
        eni = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=3, TagSpecifications=[
            {"ResourceType": "network-interface", "Tags": [{"Key": "node", "Value": node}]}])["NetworkInterface"]
        ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=node, DeviceIndex=1)
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], Ipv4PrefixCount=1)
    ec2.terminate_instances(InstanceIds=[nodes[2]])


def test_persistence_resumes_the_same_state(tmp_path):
    path = str(tmp_path / "ec2.sqlite")
    first = Ec2Service(seed=3, state_file=path)
    busy_script(InProcessEc2Client(first))
    before = state_of(InProcessEc2Client(first))
    first.close()
    second = Ec2Service(seed=3, state_file=path)
    ec2 = InProcessEc2Client(second)
    assert state_of(ec2) == before
    # fresh ids and addresses after the restart: nothing is handed out twice
    subnet = next(iter(before["subnets"]))
    new = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=5)["NetworkInterface"]
    assert new["NetworkInterfaceId"] not in before["enis"]
    taken = {a for addrs, *_ in before["enis"].values() for a in addrs}
    assert not taken & {a["PrivateIpAddress"] for a in new["PrivateIpAddresses"]}
    second.close()


def test_same_seed_same_world():
    a, b = (InProcessEc2Client(Ec2Service(seed=11)) for _ in range(2))
    busy_script(a)
    busy_script(b)
    assert state_of(a) == state_of(b)
    c = InProcessEc2Client(Ec2Service(seed=12))
    busy_script(c)
    assert state_of(c) != state_of(a)


def held_by_enis(service) -> list[int]:
    held = []
    for eni in service.state.enis.values():
        held += [eni.primary_ip, *eni.secondary_ips]
        held += [p + k for p in eni.prefixes for k in range(16)]
    return held


@settings(max_examples=25, deadline=None)
@given(plan=st.lists(st.tuples(st.sampled_from(["ip", "prefix", "free"]), st.integers(1, 3)), min_size=5, max_size=40),
       placement=st.sampled_from(["random", "lowest"]))
def test_no_address_or_prefix_is_ever_given_twice_under_threads(plan, placement):
    service = Ec2Service(seed=5, placement=placement)
    ec2 = InProcessEc2Client(service)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/25", AvailabilityZone="ap-northeast-2a")["Subnet"]
    enis = [ec2.create_network_interface(SubnetId=subnet["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
            for _ in range(4)]

    def worker(eni_id: str) -> None:
        for kind, n in plan:
            try:
                if kind == "ip":
                    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=n)
                elif kind == "prefix":
                    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, Ipv4PrefixCount=n)
                else:
                    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
                    ips = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"] if not a["Primary"]][:n]
                    prefixes = [p["Ipv4Prefix"] for p in eni["Ipv4Prefixes"]][:1]
                    if ips or prefixes:
                        ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni_id, PrivateIpAddresses=ips,
                                                          Ipv4Prefixes=prefixes)
            except ClientError as err:
                assert err.response["Error"]["Code"] in {"PrivateIpAddressLimitExceeded", "InsufficientCidrBlocks",
                                                         "InsufficientFreeAddressesInSubnet"}

    threads = [threading.Thread(target=worker, args=(e,)) for e in enis]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = held_by_enis(service)
    assert len(held) == len(set(held))
    network = ip_int("10.1.0.0")
    assert all(network + 4 <= a < network + 127 for a in held)
    available = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"]
    assert available == 128 - 5 - len(held)


def test_throttle_buckets_are_configurable(clock):
    from minieks.ec2.throttle import BucketSpec

    service = Ec2Service(seed=1, clock=clock, throttling=True, throttle_buckets={"describe": BucketSpec(3, 1)})
    ec2 = InProcessEc2Client(service)
    for _ in range(3):
        ec2.describe_vpcs()
    with pytest.raises(ClientError):
        ec2.describe_vpcs()
    assert service.throttle.throttled == {"DescribeVpcs": 1}


def test_bucket_option_parsing():
    from minieks.ec2.command import parse_buckets
    from minieks.usage import UsageError

    assert parse_buckets(["attach=10/1"])["attach"].capacity == 10
    for bad in ["nope=1/1", "attach=ten/1", "attach=0/1"]:
        with pytest.raises(UsageError):
            parse_buckets([bad])
