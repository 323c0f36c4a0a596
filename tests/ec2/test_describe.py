"""Describe calls: filters, tags, pagination and DescribeInstanceTypes from the shipped data."""

import pytest
from botocore.exceptions import ClientError

from tests.ec2.helpers import seed_world


def test_instance_types_for_the_seed_query(ec2):
    out = ec2.describe_instance_types(Filters=[{"Name": "instance-type", "Values": ["t3.*"]}])
    rows = {t["InstanceType"]: (t["NetworkInfo"]["MaximumNetworkInterfaces"],
                                t["NetworkInfo"]["Ipv4AddressesPerInterface"]) for t in out["InstanceTypes"]}
    assert rows == {"t3.nano": (2, 2), "t3.micro": (2, 2), "t3.small": (3, 4), "t3.medium": (3, 6),
                    "t3.large": (3, 12), "t3.xlarge": (4, 15), "t3.2xlarge": (4, 15)}
    medium = next(t for t in out["InstanceTypes"] if t["InstanceType"] == "t3.medium")
    assert medium["VCpuInfo"] == {"DefaultVCpus": 2} and medium["MemoryInfo"] == {"SizeInMiB": 4096}


def test_multi_card_type_reports_every_card(ec2):
    [t] = ec2.describe_instance_types(InstanceTypes=["p4d.24xlarge"])["InstanceTypes"]
    assert t["NetworkInfo"]["MaximumNetworkInterfaces"] == 60
    assert [c["MaximumNetworkInterfaces"] for c in t["NetworkInfo"]["NetworkCards"]] == [15, 15, 15, 15]


def test_instance_types_paginate_by_100(ec2):
    first = ec2.describe_instance_types()
    assert len(first["InstanceTypes"]) == 100 and first["NextToken"]
    seen = len(first["InstanceTypes"])
    token = first["NextToken"]
    while token:
        page = ec2.describe_instance_types(NextToken=token)
        seen += len(page["InstanceTypes"])
        token = page.get("NextToken")
    assert seen == 1391


def test_eni_filters_as_ipamd_uses_them(ec2):
    vpc, subnets, nodes = seed_world(ec2)
    tagged = ec2.create_network_interface(
        SubnetId=subnets[0], Description="aws-K8S-" + nodes[0],
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
            {"Key": "node.k8s.amazonaws.com/instance_id", "Value": nodes[0]},
            {"Key": "cluster.k8s.amazonaws.com/name", "Value": "myeks"}]}])["NetworkInterface"]["NetworkInterfaceId"]
    leaked = ec2.describe_network_interfaces(Filters=[
        {"Name": "tag-key", "Values": ["node.k8s.amazonaws.com/instance_id"]},
        {"Name": "status", "Values": ["available"]},
        {"Name": "vpc-id", "Values": [vpc]},
        {"Name": "tag:cluster.k8s.amazonaws.com/name", "Values": ["myeks"]}])["NetworkInterfaces"]
    assert [e["NetworkInterfaceId"] for e in leaked] == [tagged]
    on_node = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [nodes[1]]}])
    assert len(on_node["NetworkInterfaces"]) == 1
    in_zone = ec2.describe_network_interfaces(Filters=[{"Name": "availability-zone", "Values": ["ap-northeast-2*"]},
                                                       {"Name": "subnet-id", "Values": subnets[:2]}])
    assert len(in_zone["NetworkInterfaces"]) == 3
    with pytest.raises(ClientError) as err:
        ec2.describe_network_interfaces(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_describe_network_interfaces_pages(ec2):
    _, [subnet, *_], _ = seed_world(ec2)
    for _ in range(12):
        ec2.create_network_interface(SubnetId=subnet)
    ids, token, pages = [], None, 0
    while True:
        page = ec2.describe_network_interfaces(MaxResults=5, **({"NextToken": token} if token else {}))
        ids += [e["NetworkInterfaceId"] for e in page["NetworkInterfaces"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and len(ids) == len(set(ids)) == 15
    with pytest.raises(ClientError):
        ec2.describe_network_interfaces(MaxResults=2)


def test_tags_create_and_delete(ec2):
    _, [subnet, *_], [node, *_] = seed_world(ec2)
    ec2.create_tags(Resources=[node, subnet], Tags=[{"Key": "team", "Value": "net"}])
    found = ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["net"]}])["Reservations"]
    assert [r["Instances"][0]["InstanceId"] for r in found] == [node]
    ec2.delete_tags(Resources=[node], Tags=[{"Key": "team"}])
    assert not ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["net"]}])["Reservations"]
    assert ec2.describe_subnets(Filters=[{"Name": "tag-key", "Values": ["team"]}])["Subnets"][0]["SubnetId"] == subnet


def test_instances_show_names_addresses_and_state(ec2):
    _, _, nodes = seed_world(ec2)
    reservations = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    instances = [i for r in reservations["Reservations"] for i in r["Instances"]]
    assert [i["InstanceId"] for i in instances] == nodes
    assert [i["PrivateIpAddress"].rsplit(".", 2)[-2] for i in instances] == ["1", "2", "3"]
    assert {t["Value"] for i in instances for t in i["Tags"]} == {f"myeks-ng1-Node-{n}" for n in (1, 2, 3)}
    assert all(i["NetworkInterfaces"][0]["Attachment"]["DeleteOnTermination"] for i in instances)
