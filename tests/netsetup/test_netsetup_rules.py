"""ip rules, routes and neighbours: ip_rules vectors, the verified §6.2/§6.3/§7.3 text."""

from pathlib import Path

import pytest
import yaml

from minieks.netsetup import rules
from minieks.netsetup.names import route_table_id
from minieks.netsetup.nftables import connmark_table, nft_delete_script, nft_listing, nft_script

VECTORS = yaml.safe_load((Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
IP_RULES = {v["id"]: v for v in VECTORS["ip_rules"]}
POD = {v["id"]: v for v in VECTORS["pod_network_setup"]}

SPEC_IP_RULE_SHOW = """0:	from all lookup local
512:	from all to 10.0.1.23 lookup main
1024:	from all fwmark 0x80/0x80 lookup main
1535:	from all to 10.100.0.0/16 lookup main
1536:	from 10.0.1.45 lookup 2
32765:	from 10.0.1.200 lookup 2
32766:	from all lookup main
32767:	from all lookup default"""

SPEC_NFT_LIST = """table ip aws-cni {
	chain nat-prerouting {
		type nat hook prerouting priority dstnat + 10; policy accept;
		fib daddr type local return
		iifname "eni*" counter packets 0 bytes 0 jump snat-mark
		counter packets 0 bytes 0 meta mark set ct mark & 0x00000080
	}
	chain snat-mark {
		counter packets 0 bytes 0 ip daddr 192.168.0.0/16 return
		counter packets 0 bytes 0 ct mark set ct mark | 0x00000080
	}
}"""


def test_spec_ip_rule_show():
    """§6.2 verified output. It lists the 1536 rule of the pod on eth1 (10.0.1.45) but not that
    pod's 512 rule, which ADD also adds; the rule set is rebuilt here as printed."""
    eni = rules.eni_network("eth1", "10.0.1.200", "10.0.1.0/24", route_table_id(1))
    pod_eth0 = rules.pod_host_side("10.0.1.23", "eni-a", route_table_id(0))
    pod_eth1 = rules.pod_host_side("10.0.1.45", "enib5faff8a083", route_table_id(1))
    present = (rules.kernel_default_rules() + list(pod_eth0.rules)
               + [r for r in pod_eth1.rules if r.priority == rules.FROM_CONTAINER_PRIORITY]
               + [rules.host_fwmark_rule(), rules.external_service_rule("10.100.0.0/16"), eni.rule])
    assert rules.show_rules(present) == SPEC_IP_RULE_SHOW
    assert [r.priority for r in pod_eth1.rules] == [512, 1536]


def test_spec_route_show():
    """§6.3: `ip route show table 2` and the host's per-pod main-table route."""
    eni = rules.eni_network("eth1", "10.0.1.200", "10.0.1.0/24", 2)
    assert rules.show_routes(eni.routes, 2) == "default via 10.0.1.1 dev eth1\n10.0.1.1 dev eth1 scope link"
    pod = rules.pod_host_side("10.0.1.45", "enib5faff8a083", 2)
    assert pod.route.show() == "10.0.1.45 dev enib5faff8a083 scope link"


def test_dataplane_node_main_table():
    """netns-dataplane.md §3: pods on eth0 and eth1 of node n1 (main table excerpt)."""
    routes = [rules.pod_host_side("192.168.1.64", "eni4fb07be862b", 2).route,
              rules.pod_host_side("192.168.1.32", "eni590d00a25cf", 254).route]
    assert rules.show_routes(routes) == ("192.168.1.32 dev eni590d00a25cf scope link\n"
                                         "192.168.1.64 dev eni4fb07be862b scope link")


def test_spec_pod_view():
    """§7.3 resulting pod view (IPv4, i=0)."""
    pod = rules.pod_side("10.0.1.45", "eth0", "86:83:92:58:af:e1")
    assert pod.address.show() == "10.0.1.45/32"
    assert rules.show_routes(pod.routes) == "default via 169.254.1.1 dev eth0\n169.254.1.1 dev eth0 scope link"
    assert pod.neighbour.show() == "169.254.1.1 dev eth0 lladdr 86:83:92:58:af:e1 PERMANENT"
    assert pod.rule is None


def test_pod_view_multi_nic_and_v6():
    pod = rules.pod_side("192.168.120.1/32", "mNicIf1", "aa:aa:aa:aa:aa:aa", index=1)
    assert pod.gateway == "169.254.1.2" and pod.table == 1
    assert pod.rule.show() == "1:\tfrom 192.168.120.1 lookup 1"
    assert [r.show(with_table=True) for r in pod.routes] == [
        "169.254.1.2 dev mNicIf1 table 1 scope link", "default via 169.254.1.2 dev mNicIf1 table 1"]
    v6 = rules.pod_side("2001:db8:3333:4444:5555:6666:7777:8888/128", "eth0", "aa:aa:aa:aa:aa:aa")
    assert v6.address.show() == "2001:db8:3333:4444:5555:6666:7777:8888/128"
    assert [r.show() for r in v6.routes] == ["fe80::1 dev eth0 scope link", "default via fe80::1 dev eth0"]


def test_eni_primary_ip_rule():
    vector = IP_RULES["eni-primary-ip-rule"]
    given, expected = vector["input"], vector["expected"]
    table = route_table_id(given["device"], given["network_card"])
    eni = rules.eni_network("eth10", given["eni_ip"], given["eni_subnet"], table)
    rule = expected["rule"]
    assert eni.rule == rules.IpRule(rule["priority"], rule["table"], src=rule["src"], family=4)
    assert eni.address.show() == expected["address_on_link"]
    assert [r.show() for r in eni.routes] == [
        r.replace("<eni>", "eth10").replace("/32", "") for r in expected["routes_in_table_11"]]
    assert eni.main_route_to_delete.show() == "10.10.0.0/16 dev eth10 proto kernel scope link src 10.10.10.20"
    assert eni.mtu == expected["mtu"]


def test_eni_primary_ip_rule_v6():
    vector = IP_RULES["eni-primary-ip-rule-v6"]
    given, rule = vector["input"], vector["expected"]["rule"]
    eni = rules.eni_network("eth10", given["eni_ip"], given["eni_subnet"],
                            route_table_id(given["device"], given["network_card"]))
    assert eni.rule == rules.IpRule(rule["priority"], rule["table"], src=rule["src"], family=6)
    assert eni.routes[1].via == "fe80:ec2::1"


def test_setup_eni_on_primary_is_error():
    vector = IP_RULES["setup-eni-on-primary-is-error"]
    with pytest.raises(rules.EniSetupError, match=vector["expected_error"]):
        rules.eni_network("eth0", "10.0.0.10", "10.0.0.0/24", vector["input"]["route_table"])


def test_trunk_eni_has_no_rule():
    assert rules.eni_network("eth1", "10.0.1.200", "10.0.1.0/24", 2, trunk=True).rule is None


@pytest.mark.parametrize("case", IP_RULES["ipv6-gateway-rule"]["cases"], ids=lambda c: c["pod_sg_mode"])
def test_ipv6_gateway_rule(case):
    changes = rules.ipv6_gateway_rule_changes(case["pod_sg_mode"])
    rule = rules.ipv6_gateway_rule()
    assert (rule.priority, rule.table, rule.src, rule.ipproto, rule.family) == (0, 255, "fe80:ec2::1/128", "ipv6-icmp", 6)
    assert rule.show() == "0:\tfrom fe80:ec2::1 ipproto ipv6-icmp lookup local"
    if case["expected"].startswith("RuleAdd"):
        assert changes.add == (rule,) and changes.delete == ()
    else:
        assert changes.delete == (rule,) and changes.add == ()


def test_update_rule_list_by_src():
    old = [rules.IpRule(1536, 2, src="10.0.1.45/32", dst="10.0.0.0/16"),
           rules.IpRule(1536, 2, src="10.0.1.45/32", dst="10.1.0.0/16"),
           rules.IpRule(1536, 3, src="10.0.1.46/32")]
    changes = rules.rules_by_src_rewrite(old, "10.0.1.45")
    assert changes.delete == tuple(old[:2])
    assert changes.add == (rules.IpRule(1536, 2, src="10.0.1.45/32"),)
    assert changes.add[0].show() == "1536:\tfrom 10.0.1.45 lookup 2"


@pytest.mark.parametrize("case", IP_RULES["external-service-cidr-rules"]["cases"])
def test_external_service_cidr_rules(case):
    existing = [rules.IpRule(e["prio"], 254, dst=e["dst"]) for e in case["existing"]]
    changes = rules.external_service_rule_changes(existing, case["new"])
    assert [r.dst for r in changes.delete] == case["expected_del"]
    assert [r.dst for r in changes.add] == case["expected_add"]
    assert all(r.priority == 1535 and r.table == 254 for r in changes.add)


@pytest.mark.parametrize("vector", [POD["pod-on-primary-eni"], POD["pod-on-secondary-eni"]], ids=lambda v: v["id"])
def test_pod_host_side(vector):
    given = vector["input"]
    side = rules.pod_host_side(given["ip"], given["host_veth"], given["route_table"])
    assert side.route == rules.Route("192.168.100.42/32", "eni8ea2c11fe35", scope="link", table=254)
    wanted = [rules.IpRule(512, 254, dst="192.168.100.42/32")]
    if given["route_table"] > 1:
        wanted.append(rules.IpRule(1536, given["route_table"], src="192.168.100.42/32"))
    assert list(side.rules) == wanted


@pytest.mark.parametrize("case", POD["pod-teardown"]["cases"][:2])
def test_pod_teardown_rules(case):
    got = rules.pod_teardown_rules(case["ip"], case["route_table"])
    assert [r.priority for r in got] == ([512] if case["route_table"] == 1 else [512, 1536])


@pytest.mark.parametrize("case", POD["vlan-routes"]["cases"])
def test_vlan_routes(case):
    net = rules.branch_pod_network("10.0.0.5", "vlanb5faff8a083", 1, case["gw"])
    assert net.table == case["table"]
    shown = [r.show() for r in net.routes[:2]]
    gw = case["gw"]
    assert shown == [f"{gw} dev vlan.eth.1 scope link", f"default via {gw} dev vlan.eth.1"]


def test_branch_pod_rules():
    strict = rules.branch_pod_network("10.0.0.5", "vlanb5faff8a083", 7, "10.0.0.1")
    assert [r.show() for r in strict.rules] == ["10:\tfrom all iif vlan.eth.7 lookup 107",
                                                "10:\tfrom all iif vlanb5faff8a083 lookup 107"]
    standard = rules.branch_pod_network("10.0.0.5", "enib5faff8a083", 7, "10.0.0.1", "standard")
    assert [r.priority for r in standard.rules] == [512, 1536]


def test_host_fwmark_rule():
    assert rules.host_fwmark_rule().show() == "1024:\tfrom all fwmark 0x80/0x80 lookup main"
    assert rules.host_rule_changes(False, False).add == (rules.host_fwmark_rule(),)


def test_spec_nft_listing():
    table = connmark_table("eni", 0x80, ["192.168.0.0/16"])
    assert nft_listing(table) == SPEC_NFT_LIST
    script = nft_script(table)
    assert script.startswith("table ip aws-cni\ndelete table ip aws-cni\ntable ip aws-cni {\n")
    assert "packets" not in script and "counter ip daddr 192.168.0.0/16 return" in script
    assert nft_delete_script() == "table ip aws-cni\ndelete table ip aws-cni\n"
    with pytest.raises(ValueError, match="exemptCIDRs cannot be empty"):
        connmark_table("eni", 0x80, [])
