"""Names, route tables and gateways against the upstream vectors (spec §6.3, §7.2)."""

from pathlib import Path

import pytest
import yaml

from minieks.netsetup import names

VECTORS = yaml.safe_load((Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())


def _cases(section):
    return [case for group in VECTORS[section] for case in group["cases"]]


@pytest.mark.parametrize("vector", VECTORS["veth_names"], ids=lambda v: v["id"])
def test_veth_names(vector):
    given = vector["input"]
    if "expected_suffix" in vector:
        assert names.veth_suffix(given["namespace"], given["pod_name"]) == vector["expected_suffix"]
    else:
        got = names.host_veth_name(given["prefix"], given["namespace"], given["pod_name"], given["index"])
        assert got == vector["expected"]
        if given["prefix"] != "dummy":  # the dummy name only lives in the result, never a link
            assert len(got) <= 15


@pytest.mark.parametrize("case", _cases("container_iface_names"))
def test_container_iface_names(case):
    assert names.container_iface_name(case["if_name"], case["index"]) == case["expected"]


@pytest.mark.parametrize("case", _cases("vlan_link_names"))
def test_vlan_link_names(case):
    link = case.get("expected") or case["expected_link"]
    assert names.vlan_link_name(case["vlan_id"]) == link
    if "expected_table" in case:
        assert names.vlan_route_table(case["vlan_id"]) == case["expected_table"]


@pytest.mark.parametrize("case", VECTORS["route_table_id"])
def test_route_table_id(case):
    assert names.route_table_id(case["device"], case["network_card"]) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["route_table_id_legacy"])
def test_route_table_id_legacy(case):
    got = names.legacy_route_table_id(case["device"], case["network_card"], case["max_enis_per_card"])
    assert got == case["expected"]


@pytest.mark.parametrize("case", VECTORS["pod_gateway_ip"])
def test_pod_gateway_ip(case):
    assert names.pod_gateway_ip(case["index"], case["family"]) == case["expected"]
    assert names.pod_route_table(case["index"]) == case["route_table_in_pod"]


@pytest.mark.parametrize("case", VECTORS["eni_subnet_gateway"])
def test_eni_subnet_gateway(case):
    assert names.eni_subnet_gateway(case["subnet"]) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["increment_ip"])
def test_increment_ip(case):
    assert names.increment_ip(case["input"]) == case["expected"]


def test_spec_examples():
    """§7.2 examples: 14-character names from the default prefix."""
    assert names.host_veth_name("eni", "kube-system", "coredns-57ff979f67-qqbdh") == "enib5faff8a083"
    assert names.host_veth_name("eni", "kube-system", "coredns-57ff979f67-8ns9b") == "eni9571956a6cc"
    assert names.host_veth_name("eni", "default", "sample-pod") == "enicc21c2d7785"
    assert names.dummy_iface_name("default", "sample-pod") == "dummycc21c2d7785"
    assert names.branch_veth_prefix("eni", "strict") == "vlan"
    assert names.branch_veth_prefix("eni", "standard") == "eni"
    assert names.table_name(254) == "main" and names.table_name(2) == "2"
