"""KernelNodeNetwork in a real node namespace: what `ip`, `iptables -S` and `nft` print after
SetupHostNetwork and SetupENINetwork equals upstream's verified text (spec §6.1-6.4)."""

from __future__ import annotations

import pytest

from minieks.fabric import netns
from minieks.ipamd.awsutils import EniInfo
from minieks.ipamd.checkpoint import stale_rule_deletes
from minieks.ipamd.config import IpamdConfig
from minieks.netsetup import firewall, nftables
from minieks.netsetup.node_network import KernelNodeNetwork, NodeNetworkError
from minieks.netsetup.rules import EniSetupError
from tests.netsetup.test_netsetup_iptables import SPEC_MANGLE_S, SPEC_NAT_S
from tests.netsetup.kernel_lab import ENI1_IP, PRIMARY_IP, SUBNET, node_lab  # noqa: F401 (fixture)

pytestmark = pytest.mark.kernel

# §6.4's worked example: VPC CIDRs from IMDS in this order, one exclusion, eth0 = 192.168.1.10
VPC_CIDRS = ["192.168.0.0/16", "100.64.0.0/16"]
EXCLUSIONS = ("10.12.0.0/16",)
NAT_SNAT_PART = """\
-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N AWS-SNAT-CHAIN-0
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-SNAT-CHAIN-0 -d 10.12.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.1.10 --random-fully"""
NAT_WITH_CONNMARK_CHAIN, MANGLE = SPEC_NAT_S, SPEC_MANGLE_S      # the spec's §6.4 text, verbatim
BASE_RULES = ["0:\tfrom all lookup local", "32766:\tfrom all lookup main", "32767:\tfrom all lookup default"]


def config(**overrides) -> IpamdConfig:
    values = dict(enable_ipv4=True, exclude_snat_cidrs=EXCLUSIONS)
    values.update(overrides)
    return IpamdConfig(**values)


def lines(text: str) -> list[str]:
    """iproute2 output without its trailing blanks."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def show(lab, *argv: str) -> str:
    return "\n".join(lines(netns.run(lab.node, list(argv)).stdout))


def eni1(lab, **fields) -> EniInfo:
    values = dict(id="eni-1", mac=lab.eth1_mac, device_number=1, network_card=0, primary_ip=ENI1_IP,
                  subnet_id="subnet-1", subnet_cidr=SUBNET)
    values.update(fields)
    return EniInfo(**values)


# --- SetupHostNetwork -----------------------------------------------------------------------------

def test_host_network_matches_upstream_text(node_lab):
    network = KernelNodeNetwork(node_lab.node, config())
    network.setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac.upper())
    assert netns.read_sysctl(node_lab.node, "net.ipv4.conf.eth0.rp_filter") == "2"
    assert netns.read_sysctl(node_lab.node, "net.ipv4.tcp_early_demux") == "1"
    assert "mtu 9001" in node_lab.ip(node_lab.node, "link", "show", "eth0")
    assert lines(node_lab.ip(node_lab.node, "rule")) == [
        BASE_RULES[0], "1024:\tfrom all fwmark 0x80/0x80 lookup main", *BASE_RULES[1:]]
    backends = firewall.detect_backends(node_lab.node)
    assert network.backends == backends
    assert show(node_lab, "iptables", "-t", "mangle", "-S") == MANGLE
    if backends.effective == "nftables":        # iptables 1.8.9 (nf_tables) with nft installed
        assert show(node_lab, "iptables", "-t", "nat", "-S") == NAT_SNAT_PART
        table = nftables.connmark_table("eni", 0x80, VPC_CIDRS + list(EXCLUSIONS))
        assert show(node_lab, "nft", "list", "table", "ip", "aws-cni") == nftables.nft_listing(table)
    else:
        assert show(node_lab, "iptables", "-t", "nat", "-S") == NAT_WITH_CONNMARK_CHAIN
    assert show(node_lab, "iptables", "-t", "nat", "-S") == network.last_iptables.dump("nat")


def test_host_network_is_idempotent(node_lab):
    network = KernelNodeNetwork(node_lab.node, config())
    network.setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    first = [show(node_lab, "iptables", "-t", t, "-S") for t in ("nat", "mangle")]
    first.append(show(node_lab, "ip", "rule"))
    network.setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    again = [show(node_lab, "iptables", "-t", t, "-S") for t in ("nat", "mangle")]
    again.append(show(node_lab, "ip", "rule"))
    assert again == first
    assert all(not c for c in network.last_iptables.changes.values())


def test_connmark_chain_when_nft_is_unavailable(node_lab):
    """Detection says nftables, but without the nft tool the iptables chain carries the mark."""
    network = KernelNodeNetwork(node_lab.node, config())
    version = firewall.detect_backends(node_lab.node).iptables_version
    cfg = network._iptables_config("eth0", PRIMARY_IP, VPC_CIDRS)
    firewall.apply_host_iptables(node_lab.node, cfg, firewall.Backends(version, "nftables", False))
    assert show(node_lab, "iptables", "-t", "nat", "-S") == NAT_WITH_CONNMARK_CHAIN
    assert show(node_lab, "iptables", "-t", "mangle", "-S") == MANGLE


def test_vpc_cidr_change_rebuilds_the_chains(node_lab):
    network = KernelNodeNetwork(node_lab.node, config(exclude_snat_cidrs=()))
    network.setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    network.setup_host_network(["192.168.0.0/16"], PRIMARY_IP, node_lab.eth0_mac)
    nat = show(node_lab, "iptables", "-t", "nat", "-S")
    assert "100.64.0.0/16" not in nat
    assert nat.count("-j RETURN") in (1, 2)      # SNAT chain (+ connmark chain without nft)
    if firewall.detect_backends(node_lab.node).effective == "nftables":
        listing = show(node_lab, "nft", "list", "table", "ip", "aws-cni")
        assert "100.64.0.0/16" not in listing and "ip daddr 192.168.0.0/16 return" in listing


def test_external_snat_without_nodeport(node_lab):
    network = KernelNodeNetwork(node_lab.node, config(external_snat=True, node_port_support=False))
    network.setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    assert lines(node_lab.ip(node_lab.node, "rule")) == BASE_RULES
    assert show(node_lab, "iptables", "-t", "nat", "-S").splitlines()[-1] == "-N AWS-SNAT-CHAIN-0"
    assert "-A PREROUTING" not in show(node_lab, "iptables", "-t", "mangle", "-S")
    assert netns.run(node_lab.node, ["nft", "list", "table", "ip", "aws-cni"], check=False).returncode != 0


def test_switching_to_external_snat_removes_in_node_snat(node_lab):
    KernelNodeNetwork(node_lab.node, config()).setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    KernelNodeNetwork(node_lab.node, config(external_snat=True)).setup_host_network(
        VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    nat = show(node_lab, "iptables", "-t", "nat", "-S")
    assert "SNAT --to-source" not in nat and "AWS-CONNMARK-CHAIN-0" not in nat
    assert "1024:\tfrom all fwmark 0x80/0x80 lookup main" in lines(node_lab.ip(node_lab.node, "rule"))


def test_external_service_cidr_rules(node_lab):
    KernelNodeNetwork(node_lab.node, config(external_service_cidrs=("10.100.0.0/16", "10.101.0.0/16"))
                      ).setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    rules_text = lines(node_lab.ip(node_lab.node, "rule"))
    assert "1535:\tfrom all to 10.100.0.0/16 lookup main" in rules_text
    assert "1535:\tfrom all to 10.101.0.0/16 lookup main" in rules_text
    KernelNodeNetwork(node_lab.node, config(external_service_cidrs=("10.102.0.0/16",))
                      ).setup_host_network(VPC_CIDRS, PRIMARY_IP, node_lab.eth0_mac)
    assert [r for r in lines(node_lab.ip(node_lab.node, "rule")) if r.startswith("1535:")] == [
        "1535:\tfrom all to 10.102.0.0/16 lookup main"]


def test_unknown_primary_mac(node_lab):
    network = KernelNodeNetwork(node_lab.node, config())
    with pytest.raises(NodeNetworkError, match="failed to find the link which uses MAC address 02:aa"):
        network.setup_host_network(VPC_CIDRS, PRIMARY_IP, "02:aa:00:00:00:01")


# --- SetupENINetwork ------------------------------------------------------------------------------

def test_eni_network_matches_upstream_text(node_lab):
    network = KernelNodeNetwork(node_lab.node, config())
    network.setup_eni_network(eni1(node_lab), 2)
    assert show(node_lab, "ip", "route", "show", "table", "2") == (
        "default via 192.168.1.1 dev eth1\n192.168.1.1 dev eth1 scope link")
    assert show(node_lab, "ip", "route", "show", "table", "main") == (
        "default via 192.168.1.1 dev eth0\n"
        "192.168.1.0/24 dev eth0 proto kernel scope link src 192.168.1.10")
    assert lines(node_lab.ip(node_lab.node, "rule")) == [
        BASE_RULES[0], "32765:\tfrom 192.168.1.20 lookup 2", *BASE_RULES[1:]]
    link = node_lab.ip(node_lab.node, "-4", "addr", "show", "dev", "eth1")
    assert "mtu 9001" in link and "state UP" in link and "inet 192.168.1.20/24 " in link
    network.setup_eni_network(eni1(node_lab), 2)                     # restart: same state
    assert show(node_lab, "ip", "route", "show", "table", "2") == (
        "default via 192.168.1.1 dev eth1\n192.168.1.1 dev eth1 scope link")
    assert lines(node_lab.ip(node_lab.node, "rule")).count("32765:\tfrom 192.168.1.20 lookup 2") == 1
    assert "192.168.1.0/24 dev eth1" not in node_lab.ip(node_lab.node, "route")


def test_eni_network_replaces_stale_addresses(node_lab):
    with netns.iproute(node_lab.node) as ipr:
        index = ipr.link("get", ifname="eth1")[0]["index"]
        ipr.addr("add", index=index, address="192.168.1.99", prefixlen=24)
    KernelNodeNetwork(node_lab.node, config()).setup_eni_network(eni1(node_lab), 2)
    addrs = node_lab.ip(node_lab.node, "-4", "-o", "addr", "show", "dev", "eth1")
    assert "192.168.1.99" not in addrs and "192.168.1.20/24" in addrs


def test_eni_network_refuses_the_primary_and_unknown_macs(node_lab):
    network = KernelNodeNetwork(node_lab.node, config(), mac_lookup_tries=2, mac_lookup_interval=0.01)
    with pytest.raises(EniSetupError, match="setupENINetwork should never be called on the primary ENI"):
        network.setup_eni_network(eni1(node_lab), 254)
    with pytest.raises(NodeNetworkError) as err:
        network.setup_eni_network(eni1(node_lab, mac="02:bb:00:00:00:02"), 3)
    assert str(err.value) == "setupENINetwork: failed to find the link which uses MAC address 02:bb:00:00:00:02"


def test_remove_eni_rules(node_lab):
    network = KernelNodeNetwork(node_lab.node, config())
    network.setup_eni_network(eni1(node_lab), 2)
    network.remove_eni_rules(ENI1_IP)
    network.remove_eni_rules(ENI1_IP)                                # already gone: fine
    assert lines(node_lab.ip(node_lab.node, "rule")) == BASE_RULES


# --- checkpoint clean-ups -------------------------------------------------------------------------

def test_host_links_delete_rules_and_update_pod_rule(node_lab):
    network = KernelNodeNetwork(node_lab.node, config())
    assert sorted(network.host_links()) == ["eth0", "eth1", "lo"]
    for rule in (["to", "192.168.1.64/32", "lookup", "main", "prio", "512"],
                 ["from", "192.168.1.64/32", "to", "192.168.0.0/16", "lookup", "2", "prio", "1536"],
                 ["to", "192.168.1.65/32", "lookup", "main", "prio", "512"],
                 ["from", "192.168.1.65/32", "lookup", "3", "prio", "1536"]):
        node_lab.ip(node_lab.node, "rule", "add", *rule)
    network.update_pod_rule("192.168.1.64", 2)        # old "from ip to vpc" style → one 1536 rule
    network.delete_rules(stale_rule_deletes("192.168.1.65"))
    network.delete_rules(stale_rule_deletes("192.168.1.65"))
    assert lines(node_lab.ip(node_lab.node, "rule")) == [
        BASE_RULES[0], "512:\tfrom all to 192.168.1.64 lookup main", "1536:\tfrom 192.168.1.64 lookup 2",
        *BASE_RULES[1:]]


def test_link_macs_reads_the_namespace_as_ip_link_does(node_lab):
    """The raw RTM_GETLINK dump behind ENI lookup and ADD's MAC choice agrees with `ip -j link`,
    for the named namespace (never the caller's) and for the calling thread's."""
    import json

    from minieks.netsetup import netlink

    shown = {link["ifname"]: link.get("address", "") for link in json.loads(node_lab.ip(node_lab.node, "-j", "link"))}
    assert netlink.link_macs(node_lab.node) == shown
    assert shown["eth1"] == node_lab.eth1_mac and shown["lo"] == "00:00:00:00:00:00"
    with netns.entered(node_lab.node):
        assert netlink.link_macs() == shown
