"""Env parsing of networkutils and MTU handling: env_cidr_parsing and mtu vectors."""

from pathlib import Path

import pytest
import yaml

from minieks.netsetup import mtu, settings

VECTORS = yaml.safe_load((Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
CIDR_GROUPS = VECTORS["env_cidr_parsing"]
MTU_GROUPS = VECTORS["mtu"]


@pytest.mark.parametrize("case", CIDR_GROUPS[0]["cases"], ids=lambda c: c["value"] or "empty")
def test_external_service_cidrs(case):
    assert settings.parse_ipv4_cidrs(case["value"]) == case["expected"]
    env = {"AWS_EXTERNAL_SERVICE_CIDRS": case["value"]}
    assert settings.HostNetworkSettings.from_env(env).external_service_cidrs == tuple(case["expected"] or ())


@pytest.mark.parametrize("case", CIDR_GROUPS[1]["cases"])
def test_exclude_snat_cidrs(case):
    env = {"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": case["value"]}
    assert list(settings.HostNetworkSettings.from_env(env).exclude_snat_cidrs) == case["expected"]


def test_cidrs_normalised_to_network():
    """env_cidr_parsing note: ParseCIDR normalises 10.0.1.1/20 to 10.0.0.0/20."""
    assert settings.parse_ipv4_cidrs("10.0.1.1/20, 10.0.2.2/20") == ["10.0.0.0/20", "10.0.0.0/20"]
    assert settings.parse_ipv4_cidrs("10.0.0.0/255.255.0.0") is None


@pytest.mark.parametrize("case", MTU_GROUPS[0]["cases"], ids=lambda c: c["input"])
def test_get_pod_mtu(case):
    assert mtu.get_pod_mtu(case["input"]) == case["expected"]


@pytest.mark.parametrize("case", MTU_GROUPS[1]["cases"], ids=lambda c: str(c["AWS_VPC_ENI_MTU"]))
def test_get_ethernet_mtu(case):
    env = {} if case["AWS_VPC_ENI_MTU"] == "unset" else {"AWS_VPC_ENI_MTU": case["AWS_VPC_ENI_MTU"]}
    assert mtu.get_ethernet_mtu(env) == case["expected"]
    assert settings.HostNetworkSettings.from_env(env).eni_mtu == case["expected"]


@pytest.mark.parametrize("case", MTU_GROUPS[2]["cases"])
def test_mtu_validation(case):
    got = []
    for name in ("AWS_VPC_ENI_MTU", "POD_MTU"):
        value = None if case[name] == "unset" else case[name]
        got.append(mtu.validate_mtu_var(name, value, case["ipv6"]) is None)
    assert got == case["expected_valid"]


def test_mtu_validation_texts():
    assert mtu.validate_mtu_var("POD_MTU", "abc") == "POD_MTU MUST be a valid integer. abc is invalid"
    assert mtu.validate_mtu_var("POD_MTU", "500") == \
        "POD_MTU cannot be less than 576 or greater than 9001 in IPv4. 500 is invalid"
    assert mtu.validate_mtu_var("AWS_VPC_ENI_MTU", "1200", ipv6=True) == \
        "AWS_VPC_ENI_MTU cannot be less than 1280 or greater than 9001 in IPv6. 1200 is invalid"
    assert mtu.get_pod_mtu(" 8000") == 9001  # Go's Atoi takes no spaces


@pytest.mark.parametrize("value,expected", [
    (None, 0x80), ("0x40", 0x40), ("64", 64), ("0100", 64), ("0b1", 1), ("0", 0x80), ("-1", 0x80),
    ("0x100000000", 0x80), ("0xffffffff", 0xFFFFFFFF), ("junk", 0x80),
])
def test_connmark_env(value, expected):
    assert settings.parse_connmark(value) == expected


def test_settings_defaults_and_bools():
    default = settings.HostNetworkSettings.from_env({})
    assert default == settings.HostNetworkSettings()
    env = {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "True", "AWS_VPC_CNI_NODE_PORT_SUPPORT": "nope",
           "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "PRNG", "AWS_VPC_K8S_CNI_VETHPREFIX": "veth"}
    parsed = settings.HostNetworkSettings.from_env(env)
    assert parsed.external_snat is True and parsed.node_port_support is True
    assert parsed.randomize_snat == "prng" and parsed.veth_prefix == "veth"
    assert settings.parse_randomize_snat("hashrandom") == "hashrandom"
