"""The fabric in the kernel: nodes, ENIs, addresses and the VPC's services follow EC2, and real
packets (ping, HTTP, DNS) behave as on AWS. Needs root; every lab is removed afterwards."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from minieks.fabric import netns, resolv
from minieks.fabric.fabric import Fabric, cleanup
from tests.fabric.conftest import kernel_only, make_service, new_lab_name

pytestmark = kernel_only


def ping(lab, namespace: str, target: str, *extra: str) -> subprocess.CompletedProcess:
    return lab.sh(namespace, "ping", "-c", "1", "-W", "1", *extra, target, check=False)


def ttl(output: str) -> int:
    return int(re.search(r"ttl=(\d+)", output).group(1))


def eni_of(lab, instance: dict, device: int = 0) -> dict:
    found = lab.svc.call("DescribeNetworkInterfaces", {"Filters": [
        {"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]})["NetworkInterfaces"]
    return next(e for e in found if e["Attachment"]["DeviceIndex"] == device)


def vpc_routes(lab) -> str:
    return lab.sh(lab.fabric.names.vpc, "ip", "route").stdout


def vpc_neighbours(lab) -> str:
    return lab.sh(lab.fabric.names.vpc, "ip", "neigh").stdout


def test_nodes_appear_with_eth0_configured_as_dhcp_would(lab):
    fabric = lab.start()
    one, two = lab.launch("a"), lab.launch("b")
    assert fabric.errors == []
    n1, n2 = lab.node(one), lab.node(two)
    assert (n1, n2) == (f"{lab.name}-n1", f"{lab.name}-n2")
    assert set(netns.list_namespaces(lab.prefix)) == {n1, n2, *(f"{lab.name}-{r}" for r in ("vpc", "igw", "inet"))}

    eni = eni_of(lab, one)
    link = lab.sh(n1, "ip", "-o", "link", "show", "eth0").stdout
    assert eni["MacAddress"] in link and "mtu 9001" in link and "state UP" in link
    addr = lab.sh(n1, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"inet {one['PrivateIpAddress']}/24 brd 192.168.1.255" in addr
    routes = lab.sh(n1, "ip", "route").stdout.splitlines()
    assert "default via 192.168.1.1 dev eth0 " in [r + " " if not r.endswith(" ") else r for r in routes]
    assert not any("proto" in r for r in routes if r.startswith("default"))
    assert f"alias {one['InstanceId']}" in lab.sh(n1, "ip", "link", "show", "lo").stdout
    for key, value in {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "1",
                       "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.eth0.disable_ipv6": "1"}.items():
        assert netns.read_sysctl(n1, key) == value, key
    with open(os.path.join(resolv.directory(n1), "resolv.conf")) as handle:
        text = handle.read()
    assert "nameserver 192.168.0.2" in text and "search ap-northeast-2.compute.internal" in text

    # the VPC side: the port with the subnet gateway, a route and a permanent neighbour per address
    port = lab.sh(fabric.names.vpc, "ip", "-o", "addr", "show", "n2e0").stdout
    assert "inet 192.168.2.1/32" in port
    assert f"{one['PrivateIpAddress']} dev n1e0 scope link" in vpc_routes(lab)
    assert f"{two['PrivateIpAddress']} dev n2e0 lladdr {eni_of(lab, two)['MacAddress']} PERMANENT" in vpc_neighbours(lab)
    for key in ("net.ipv4.conf.n1e0.rp_filter", "net.ipv4.conf.n1e0.proxy_arp"):
        assert netns.read_sysctl(fabric.names.vpc, key) == "1"
    assert netns.read_sysctl(fabric.names.vpc, "net.ipv4.neigh.n1e0.proxy_delay") == "0"
    assert "blackhole 192.168.0.0/16" in vpc_routes(lab)
    for namespace in (fabric.names.vpc, fabric.names.igw, fabric.names.inet, n1):
        assert lab.sh(namespace, "ip", "-6", "addr").stdout == "", namespace      # IPv6 off everywhere
    assert "mtu 1500" in lab.sh(fabric.names.inet, "ip", "link", "show", "eth0").stdout
    assert fabric.timings["node"] and fabric.timings["eni"]


def test_enis_and_addresses_follow_ec2(lab):
    fabric = lab.start()
    one = lab.launch("a")
    n1 = lab.node(one)
    primary = eni_of(lab, one)["NetworkInterfaceId"]

    second = lab.svc.call("CreateNetworkInterface", {"SubnetId": lab.subnets["a"]})["NetworkInterface"]
    attachment = lab.svc.call("AttachNetworkInterface", {"NetworkInterfaceId": second["NetworkInterfaceId"],
                                                         "InstanceId": one["InstanceId"], "DeviceIndex": 1})
    eth1 = lab.sh(n1, "ip", "-o", "link", "show", "eth1").stdout
    assert second["MacAddress"] in eth1 and "mtu 9001" in eth1 and "state UP" in eth1
    assert lab.sh(n1, "ip", "-o", "-4", "addr", "show", "eth1").stdout == ""     # ipamd's job
    assert f"{second['PrivateIpAddress']} dev n1e1 scope link" in vpc_routes(lab)

    assigned = lab.svc.call("AssignPrivateIpAddresses", {"NetworkInterfaceId": primary,
                                                         "SecondaryPrivateIpAddressCount": 3})
    ips = [a["PrivateIpAddress"] for a in assigned["AssignedPrivateIpAddresses"]]
    routes, neighbours = vpc_routes(lab), vpc_neighbours(lab)
    for ip in ips:
        assert f"{ip} dev n1e0 scope link" in routes
        assert re.search(rf"^{re.escape(ip)} dev n1e0 lladdr [0-9a-f:]+ PERMANENT", neighbours, re.M)

    lab.svc.call("UnassignPrivateIpAddresses", {"NetworkInterfaceId": primary, "PrivateIpAddresses": [ips[0]]})
    assert f"{ips[0]} dev" not in vpc_routes(lab) and f"{ips[0]} dev" not in vpc_neighbours(lab)
    assert f"{ips[1]} dev n1e0" in vpc_routes(lab)

    prefix = lab.svc.call("AssignPrivateIpAddresses", {"NetworkInterfaceId": second["NetworkInterfaceId"],
                                                       "Ipv4PrefixCount": 1})["AssignedIpv4Prefixes"][0]["Ipv4Prefix"]
    assert f"{prefix} dev n1e1 scope link" in vpc_routes(lab)
    base = prefix.split("/")[0].rsplit(".", 1)
    held = [line for line in vpc_neighbours(lab).splitlines() if "n1e1" in line and "PERMANENT" in line]
    assert len(held) == 1 + 16 and f"{base[0]}.{int(base[1]) + 15} dev n1e1 lladdr {second['MacAddress']}" in "\n".join(held)

    lab.svc.call("DetachNetworkInterface", {"AttachmentId": attachment["AttachmentId"]})
    assert "eth1" not in lab.sh(n1, "ip", "link").stdout
    assert "n1e1" not in lab.sh(fabric.names.vpc, "ip", "link").stdout
    assert prefix not in vpc_routes(lab)

    fabric.reconcile()                                  # nothing to do, and nothing breaks
    assert fabric.errors == []


def test_traffic_ttl_mtu_eip_and_dns(lab):
    fabric = lab.start()
    one, two, private = lab.launch("a"), lab.launch("b"), lab.launch("b", public=False)
    n1, n3 = lab.node(one), lab.node(private)
    assert "PublicIpAddress" in one and "PublicIpAddress" not in private

    # across subnets through the VPC router: no hop is seen (the fabric adds back the TTL it takes)
    across = ping(lab, n1, two["PrivateIpAddress"])
    assert across.returncode == 0 and ttl(across.stdout) == 64
    same_subnet = ping(lab, n3, two["PrivateIpAddress"])    # on-link: proxy ARP answers at once
    assert same_subnet.returncode == 0 and ttl(same_subnet.stdout) == 64

    # MTU 9001 inside the VPC (8973 + 28 = 9001 bytes), 1500 past the internet gateway
    assert ping(lab, n1, two["PrivateIpAddress"], "-M", "do", "-s", "8973").returncode == 0
    assert ping(lab, n1, two["PrivateIpAddress"], "-M", "do", "-s", "8974").returncode != 0
    outside = ping(lab, n1, "203.0.113.10")
    assert outside.returncode == 0 and ttl(outside.stdout) == 64
    assert ping(lab, n1, "203.0.113.20", "-M", "do", "-s", "1472").returncode == 0
    too_big = ping(lab, n1, "203.0.113.10", "-M", "do", "-s", "1473")
    assert too_big.returncode != 0 and "mtu = 1500" in too_big.stdout + too_big.stderr

    # the IGW maps the primary address 1:1 to the public one; a node without one stays inside
    page = lab.sh(n1, "curl", "-s", "-m", "5", "http://www.example.com/").stdout
    assert f"client {one['PublicIpAddress']} " in page and "host 203.0.113.10" in page
    assert ping(lab, n3, "203.0.113.10").returncode != 0
    assert ping(lab, n3, one["PrivateIpAddress"]).returncode == 0

    # the resolver at the VPC's +2 answers example.com names and EC2 host names, NXDOMAIN otherwise
    assert lab.sh(n1, "getent", "hosts", "www.example.com").stdout.split()[0] == "203.0.113.10"
    assert lab.sh(n1, "getent", "hosts", "api.example.com").stdout.split()[0] == "203.0.113.20"
    ec2_name = "ip-" + two["PrivateIpAddress"].replace(".", "-") + ".ap-northeast-2.compute.internal"
    assert lab.sh(n1, "getent", "hosts", ec2_name).stdout.split()[0] == two["PrivateIpAddress"]
    assert lab.sh(n1, "getent", "hosts", "nothing.example.com", check=False).returncode == 2
    query = ("import socket; print(socket.gethostbyname('www.example.com'))")
    assert lab.sh(n1, sys.executable, "-c", query).stdout.strip() == "203.0.113.10"
    assert fabric.errors == []


def test_source_dest_check_follows_assigned_addresses(lab):
    lab.start()
    one, two = lab.launch("a"), lab.launch("b")
    n1 = lab.node(one)
    extra = "192.168.1.200"
    with netns.iproute(n1) as ipr:                       # a pod address the node uses as a source
        ipr.addr("add", index=ipr.link("get", ifname="eth0")[0]["index"], address=extra, prefixlen=32)
    # the node knows its gateway's MAC first: rp_filter checks ARP senders too, so an ARP request
    # from an unassigned source would go unanswered and delay the ping after the assignment
    assert ping(lab, n1, two["PrivateIpAddress"]).returncode == 0
    assert ping(lab, n1, two["PrivateIpAddress"], "-I", extra).returncode != 0   # EC2 drops it
    lab.svc.call("AssignPrivateIpAddresses", {"NetworkInterfaceId": eni_of(lab, one)["NetworkInterfaceId"],
                                              "PrivateIpAddresses": [extra]})
    assert ping(lab, n1, two["PrivateIpAddress"], "-I", extra).returncode == 0


def test_terminating_removes_the_node(lab):
    fabric = lab.start()
    one, two = lab.launch("a"), lab.launch("b")
    n1 = lab.node(one)
    lab.svc.call("TerminateInstances", {"InstanceIds": [one["InstanceId"]]})
    assert n1 not in netns.list_namespaces(lab.prefix)
    assert not os.path.exists(resolv.directory(n1))
    assert "n1e0" not in lab.sh(fabric.names.vpc, "ip", "link").stdout
    assert one["PublicIpAddress"] not in lab.sh(fabric.names.igw, "iptables", "-t", "nat", "-S").stdout
    assert fabric.node_namespace(one["InstanceId"]) is None
    three = lab.launch("a")
    assert lab.node(three) == f"{lab.name}-n3"            # indexes are not reused
    assert ping(lab, lab.node(three), two["PrivateIpAddress"]).returncode == 0
    assert fabric.errors == []


def test_a_restarted_fabric_adopts_the_kernel_and_catches_up(lab):
    first = lab.start()
    one, two = lab.launch("a"), lab.launch("b")
    n1, n2 = lab.node(one), lab.node(two)
    first.close()                                          # namespaces stay, events stop
    lab.svc.call("TerminateInstances", {"InstanceIds": [two["InstanceId"]]})
    extra = lab.svc.call("AssignPrivateIpAddresses", {"NetworkInterfaceId": eni_of(lab, one)["NetworkInterfaceId"],
                                                      "SecondaryPrivateIpAddressCount": 2})
    three = lab.launch("b")

    lab.fabric = Fabric(lab.svc, lab.name).start()
    assert lab.node(one) == n1 and lab.node(three) == f"{lab.name}-n3"
    assert n2 not in netns.list_namespaces(lab.prefix)
    for address in extra["AssignedPrivateIpAddresses"]:
        assert f"{address['PrivateIpAddress']} dev n1e0" in vpc_routes(lab)
    assert ping(lab, n1, three["PrivateIpAddress"]).returncode == 0
    assert f"client {one['PublicIpAddress']} " in lab.sh(n1, "curl", "-s", "-m", "5", "http://203.0.113.10/").stdout
    assert lab.fabric.errors == []


CRASHING_LAB = textwrap.dedent("""
    import sys, time
    from minieks.fabric import netns
    from minieks.fabric.fabric import Fabric
    from tests.fabric.conftest import Lab, make_service
    svc, subnets = make_service()
    lab = Lab(sys.argv[1], svc, subnets)
    fabric = lab.start()
    node = lab.node(lab.launch("a"))
    sleeper = netns.popen(node, ["sleep", "600"])
    print(sleeper.pid, flush=True)
    time.sleep(600)
""")


def test_cleanup_after_a_crash_leaves_nothing(tmp_path):
    name = new_lab_name()
    child = subprocess.Popen([sys.executable, "-c", CRASHING_LAB, name], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    sleeper = None
    try:
        line = child.stdout.readline()
        assert line.strip().isdigit(), "the crashing lab did not start"
        sleeper = int(line)
        assert len(netns.list_namespaces(name + "-")) == 4
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        removed = cleanup(name)
        assert sorted(removed) == sorted(f"{name}-{r}" for r in ("igw", "inet", "n1", "vpc"))
        assert netns.list_namespaces(name + "-") == []
        assert resolv.remove_all(name + "-") == []
        assert not _alive(sleeper)
        assert cleanup(name) == []                          # idempotent
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        if sleeper and _alive(sleeper):
            os.kill(sleeper, signal.SIGKILL)
        cleanup(name)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that never reaps counts as gone)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_a_fabric_started_before_the_vpc_builds_it_when_ec2_makes_it():
    from minieks.ec2.service import Ec2Service
    from tests.fabric.conftest import Lab

    svc = Ec2Service(placement="lowest")
    lab = Lab(new_lab_name(), svc, {})
    try:
        fabric = lab.start()
        assert netns.list_namespaces(lab.prefix) == []
        vpc = svc.call("CreateVpc", {"CidrBlock": "10.0.0.0/16"})["Vpc"]["VpcId"]
        lab.subnets["a"] = svc.call("CreateSubnet", {"VpcId": vpc, "CidrBlock": "10.0.3.0/24"})["Subnet"]["SubnetId"]
        node = lab.node(lab.launch("a"))
        assert fabric.resolver == "10.0.0.2"
        assert "default via 10.0.3.1 dev eth0" in lab.sh(node, "ip", "route").stdout
        assert ping(lab, node, "203.0.113.10").returncode == 0
        assert fabric.errors == []
    finally:
        lab.fabric.cleanup()
    assert netns.list_namespaces(lab.prefix) == []
