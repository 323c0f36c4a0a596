"""The fabric's pure parts: names, views of EC2 state, the IGW's rules, DNS answers, resolv.conf."""

from __future__ import annotations

import hashlib

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from minieks.ec2.service import Ec2Service
from minieks.fabric import resolv, view
from minieks.fabric.fabric import search_domain
from minieks.fabric.internet import DEFAULT_RECORDS, Zone, answer, check_records
from minieks.fabric.names import BadName, LabNames, node_ifname, port_name, port_node_index
from minieks.fabric.vpc import check_igw_mode, igw_route_rules, igw_rules, igw_ttl_rules, port_mac


def test_names_carry_the_lab_prefix_and_fit_the_kernel_limits():
    names = LabNames.of("mek-t1a2b3c")
    assert names == LabNames.of("t1a2b3c")
    assert (names.vpc, names.igw, names.inet, names.node(7)) == (
        "mek-t1a2b3c-vpc", "mek-t1a2b3c-igw", "mek-t1a2b3c-inet", "mek-t1a2b3c-n7")
    assert names.node_index("mek-t1a2b3c-n12") == 12
    assert names.node_index("mek-t1a2b3c-n1-default.nginx") is None    # a pod of node 1
    assert names.node_index("mek-other-n1") is None
    longest = LabNames.of("a" * 20).node(9999)
    assert len(longest) <= 64
    assert port_name(9999, 15, card=15) == "n9999c15e15" and len(port_name(9999, 15, 15)) <= 15
    assert (port_name(3, 1), node_ifname(1), node_ifname(0, card=1)) == ("n3e1", "eth1", "eth0c1")
    assert port_node_index("n3e1") == 3 and port_node_index("n12c1e0") == 12
    assert port_node_index("igw0") is None


@pytest.mark.parametrize("bad", ["", "my-eks", "UPPER", "a" * 21, "mek-", "../x"])
def test_lab_names_that_could_cross_labs_are_refused(bad):
    with pytest.raises(BadName):
        LabNames.of(bad)
    with pytest.raises(BadName):
        LabNames.of("x").node(0)


def _service() -> tuple[Ec2Service, dict]:
    svc = Ec2Service(placement="lowest")
    vpc = svc.call("CreateVpc", {"CidrBlock": "192.168.0.0/16"})["Vpc"]["VpcId"]
    subnet = svc.call("CreateSubnet", {"VpcId": vpc, "CidrBlock": "192.168.1.0/24"})["Subnet"]["SubnetId"]
    instance = svc.call("RunInstances", {"ImageId": "ami-1", "InstanceType": "t3.medium", "MinCount": 1,
                                         "MaxCount": 1, "SubnetId": subnet})["Instances"][0]
    return svc, instance


def test_views_copy_what_the_fabric_needs():
    svc, instance = _service()
    snap = view.snapshot(svc)
    assert snap.vpc.cidr == "192.168.0.0/16" and snap.vpc.resolver == "192.168.0.2"
    [eni] = snap.enis_of(instance["InstanceId"])
    assert eni.is_primary and (eni.device_index, eni.card) == (0, 0)
    assert (eni.gateway, eni.prefixlen, eni.primary_ip) == ("192.168.1.1", 24, instance["PrivateIpAddress"])
    svc.call("AssignPrivateIpAddresses", {"NetworkInterfaceId": eni.id, "Ipv4PrefixCount": 1})
    eni = view.eni(svc, eni.id)
    assert eni.destinations() == {f"{eni.primary_ip}/32", eni.prefixes[0]}
    assert len(view.addresses(eni.prefixes[0])) == 16 and view.addresses("10.0.0.1/32") == ["10.0.0.1"]
    assert snap.public_mapping() == {}                       # the subnet maps no public addresses
    assert [i.id for i in snap.live_instances()] == [instance["InstanceId"]]


def test_igw_rules_map_each_primary_address_to_its_public_one_and_drop_the_rest():
    text = igw_rules({"192.168.2.4": "198.51.100.4", "192.168.1.4": "198.51.100.3"})
    assert text.index("192.168.1.4") < text.index("192.168.2.4")           # sorted by address
    assert ('-A PREROUTING -i inet0 -d 198.51.100.3/32 -m comment --comment "IGW: public IP of 192.168.1.4" '
            "-j DNAT --to-destination 192.168.1.4") in text
    assert "-A POSTROUTING -o inet0 -s 192.168.1.4/32 -j SNAT --to-source 198.51.100.3" in text
    assert ":FORWARD DROP" in text and '"IGW: no public IP mapping" -j DROP' in text
    assert text.count("COMMIT") == 2 and "-j TTL --ttl-inc 1" in igw_ttl_rules()
    # fixed per ENI (labs replay: the first 5 bytes of sha1(eni id)), distinct per ENI, unicast and
    # locally administered (0x0e: bit 1 set, bit 0 clear)
    assert port_mac("eni-0abc") == "0e:" + ":".join(f"{b:02x}" for b in hashlib.sha1(b"eni-0abc").digest()[:5])
    assert port_mac("eni-0abc") != port_mac("eni-0abd")
    assert int(port_mac("eni-0abc").split(":")[0], 16) & 0x03 == 0x02


def test_igw_route_mode_forwards_the_vpc_range_both_ways_without_nat():
    text = igw_route_rules("192.168.0.0/16")
    nat = text.split("*filter")[0]
    assert "-A " not in nat and "COMMIT" in nat                # an empty nat table clears eip rules
    assert ('-A FORWARD -i vpc0 -o inet0 -s 192.168.0.0/16 -m comment --comment "IGW route mode: from the VPC" '
            "-j ACCEPT") in text
    assert "-A FORWARD -i inet0 -o vpc0 -d 192.168.0.0/16 " in text and ":FORWARD DROP" in text
    assert text.count("COMMIT") == 2
    assert check_igw_mode("route") == "route" and check_igw_mode("eip") == "eip"
    with pytest.raises(ValueError, match="igw_mode 'nat'"):
        check_igw_mode("nat")


def _ask(name: str, qtype: str = "A") -> DNSRecord:
    zone = Zone(check_records(DEFAULT_RECORDS), "192.168.0.0/16")
    return DNSRecord.parse(answer(DNSRecord.question(name, qtype).pack(), zone))


def test_the_resolver_answers_example_com_and_ec2_names_and_nothing_else():
    reply = _ask("www.example.com")
    assert reply.header.rcode == RCODE.NOERROR and [str(r.rdata) for r in reply.rr] == ["203.0.113.10"]
    assert _ask("WWW.Example.COM.").rr[0].rdata.__str__() == "203.0.113.10"
    nodata = _ask("www.example.com", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and nodata.rr == []
    assert _ask("nope.example.com").header.rcode == RCODE.NXDOMAIN
    assert _ask("www.google.com").header.rcode == RCODE.NXDOMAIN
    ec2 = _ask("ip-192-168-1-4.ap-northeast-2.compute.internal")
    assert [str(r.rdata) for r in ec2.rr] == ["192.168.1.4"] and ec2.rr[0].rtype == QTYPE.A
    assert _ask("ip-10-0-0-1.ap-northeast-2.compute.internal").header.rcode == RCODE.NXDOMAIN   # not in the VPC
    assert answer(b"\x00garbage", Zone({}, "10.0.0.0/8")) is None


@pytest.mark.parametrize("records", [{"www.google.com": ["203.0.113.10"]}, {"www.example.com": ["8.8.8.8"]}])
def test_stand_in_names_and_addresses_stay_in_documentation_space(records):
    with pytest.raises(ValueError):
        check_records(records)


def test_resolv_conf_lives_under_etc_netns_by_namespace(tmp_path, monkeypatch):
    monkeypatch.setattr(resolv, "ETC_NETNS", str(tmp_path / "netns"))
    path = resolv.write_resolv_conf("mek-t000001-n1", "192.168.0.2", ("ap-northeast-2.compute.internal",))
    text = open(path).read()
    assert path == str(tmp_path / "netns" / "mek-t000001-n1" / "resolv.conf")
    assert text.endswith("search ap-northeast-2.compute.internal\nnameserver 192.168.0.2\n")
    resolv.write_resolv_conf("mek-t000001-n2", "192.168.0.2")
    resolv.remove_resolv_conf("mek-t000001-n1")
    assert resolv.remove_all("mek-t000001-") == ["mek-t000001-n2"]
    assert not (tmp_path / "netns").exists()
    with pytest.raises(Exception):
        resolv.write_resolv_conf("root", "192.168.0.2")
    with pytest.raises(Exception):
        resolv.remove_all("mek-")


def test_search_domain_is_the_regions_as_ec2_dhcp_gives_it():
    assert search_domain("ap-northeast-2") == "ap-northeast-2.compute.internal"
    assert search_domain("us-east-1") == "ec2.internal"
