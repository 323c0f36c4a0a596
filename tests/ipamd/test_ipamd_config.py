"""IpamdConfig.from_env against the env-parsing, config-validation and MTU/CIDR vectors."""

import pathlib
import re

import pytest
import yaml

from minieks import goparse
from minieks.ipamd.decisions import EniLimits
from minieks.ipamd.config import ConfigError, IpamdConfig, checkpoint_path, validate_entrypoint_env
from minieks.netsetup.mtu import get_pod_mtu, validate_mtu_var

VECTORS = yaml.safe_load((pathlib.Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
BASE = {"ENABLE_IPv4": "true"}  # what the manifest supplies; the code default is false

ATTR = {
    "WARM_IP_TARGET": "warm_ip_target", "WARM_PREFIX_TARGET": "warm_prefix_target",
    "MINIMUM_IP_TARGET": "minimum_ip_target", "AWS_VPC_K8S_CNI_BACKING_STORE": "backing_store",
    "MANAGE_UNTAGGED_ENI": "manage_untagged_eni", "ENABLE_MULTI_NIC": "enable_multi_nic",
    "ENABLE_PREFIX_DELEGATION": "enable_prefix_delegation", "ENABLE_IPv4": "enable_ipv4",
    "ENABLE_IPv6": "enable_ipv6", "ANNOTATE_POD_IP": "annotate_pod_ip", "ENABLE_POD_ENI": "enable_pod_eni",
}


def parse(env):
    return IpamdConfig.from_env(env, validate=False)


def _env_var_cases():
    for group in VECTORS["env_parsing"]:
        if "var" in group:
            for case in group["cases"]:
                yield pytest.param(group["var"], case["value"], case["expected"], id=f"{group['var']}={case['value']}")
        elif "vars" in group:  # "all default false when unset; 'true' -> true"
            for var in group["vars"]:
                yield pytest.param(var, "unset", False, id=f"{var}=unset")
                yield pytest.param(var, "true", True, id=f"{var}=true")


@pytest.mark.parametrize("var,value,expected", list(_env_var_cases()))
def test_env_parsing_single_variable(var, value, expected):
    env = {} if value == "unset" else {var: value}
    assert getattr(parse(env), ATTR[var]) == expected


def _derived_cases():
    for group in VECTORS["env_parsing"]:
        if "cases" in group and "var" not in group:
            for case in group["cases"]:
                yield pytest.param(group["source"], case, id=str(case))


@pytest.mark.parametrize("source,case", list(_derived_cases()))
def test_env_parsing_derived_switches(source, case):
    env = {k: v for k, v in case.items() if k.isupper() or k.startswith("ENABLE_")}
    config = parse(env)
    if "expected_disabled" in case:
        assert config.leaked_eni_cleanup_disabled == case["expected_disabled"]
    else:
        assert "TestDisableENIProvisioning" in source
        assert config.provisioning_disabled == case["expected"]


@pytest.mark.parametrize("case", VECTORS["is_config_valid"]["cases"], ids=str)
def test_is_config_valid(case):
    config = IpamdConfig(enable_ipv4=case["ipv4"], enable_ipv6=case["ipv6"],
                         enable_prefix_delegation=case["pd"], enable_pod_eni=case["pod_eni"])
    try:
        checked = config.for_instance("m5.large" if case["nitro"] else "m4.large", pd_supported=case["nitro"])
    except ConfigError:
        assert case["expected"] is False
    else:
        assert case["expected"] is True
        # the vector's note: v4 + PD on a non-nitro instance is valid but PD is switched off
        assert checked.enable_prefix_delegation == (case["pd"] and case["nitro"])


def test_v4_pd_on_non_nitro_falls_back_to_secondary_ip_mode(caplog):
    config = IpamdConfig(enable_ipv4=True, enable_prefix_delegation=True)
    checked = config.for_instance("m4.large", pd_supported=False)
    assert checked.enable_prefix_delegation is False
    assert ("Prefix delegation is not supported on non-nitro instance m4.large hence falling back "
            "to default (secondary IP) mode") in caplog.text


@pytest.mark.parametrize("env,message", [
    ({"ENABLE_IPv4": "true", "ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
     "IPv4 and IPv6 are both enabled. VPC CNI currently does not support dual stack mode"),
    ({}, "IPv4 and IPv6 are both disabled. One of them have to be enabled"),
    ({"ENABLE_IPv4": "false", "ENABLE_IPv6": "true"},
     "IPv6 is supported only in Prefix Delegation mode. Custom Networking is not supported in IPv6 mode. "
     "Please set the env variables accordingly."),
    ({**BASE, "AWS_VPC_K8S_PLUGIN_LOG_FILE": "stdout"}, "AWS_VPC_K8S_PLUGIN_LOG_FILE cannot be set to stdout"),
    ({**BASE, "AWS_VPC_K8S_CNI_VETHPREFIX": "abcde"}, "AWS_VPC_K8S_CNI_VETHPREFIX cannot be longer than 4 characters"),
    ({**BASE, "AWS_VPC_K8S_CNI_VETHPREFIX": "vlan"},
     "AWS_VPC_K8S_CNI_VETHPREFIX cannot be set to reserved values 'eth', 'vlan', or 'lo'"),
    ({**BASE, "ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "lax"},
     "POD_SECURITY_GROUP_ENFORCING_MODE must be set to either 'strict' or 'standard'"),
    ({**BASE, "ENABLE_PREFIX_DELEGATION": "true"},
     "Setting WARM_PREFIX_TARGET = 0 is not supported while WARM_IP_TARGET/MINIMUM_IP_TARGET is not set. "
     "Please configure either one of the WARM_{PREFIX/IP}_TARGET or MINIMUM_IP_TARGET env variables"),
    ({**BASE, "IP_COOLDOWN_PERIOD": "-1"}, "IP_COOLDOWN_PERIOD MUST be a valid positive integer. -1 is invalid"),
    ({**BASE, "IP_COOLDOWN_PERIOD": "soon"}, "IP_COOLDOWN_PERIOD MUST be a valid positive integer. soon is invalid"),
    ({**BASE, "AWS_VPC_ENI_MTU": "abc"}, "AWS_VPC_ENI_MTU MUST be a valid integer. abc is invalid"),
    ({**BASE, "POD_MTU": "500"}, "POD_MTU cannot be less than 576 or greater than 9001 in IPv4. 500 is invalid"),
    ({**BASE, "NETWORK_POLICY_ENFORCING_MODE": "loose"},
     "invalid Network policy mode, supported modes: none, strict, standard"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_start_up_validation_messages_are_verbatim(env, message):
    with pytest.raises(ConfigError) as err:
        IpamdConfig.from_env(env)
    assert str(err.value) == message


def test_pd_check_compares_strings_like_upstream():
    # "-5" <= "0" and "" <= "0" as strings, so still rejected; "10" > "0" passes
    for value in ("-5", "", "0"):
        with pytest.raises(ConfigError):
            validate_entrypoint_env({"ENABLE_PREFIX_DELEGATION": "true", "WARM_IP_TARGET": value})
    validate_entrypoint_env({"ENABLE_PREFIX_DELEGATION": "true", "MINIMUM_IP_TARGET": "10"})


def test_manifest_defaults():
    config = IpamdConfig.from_env({**BASE, "WARM_ENI_TARGET": "1", "WARM_PREFIX_TARGET": "1",
                                   "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "prng", "NETWORK_POLICY_ENFORCING_MODE": "standard"})
    assert (config.warm_eni_target, config.max_eni, config.ip_cooldown_period) == (1, -1, 30)
    assert config.introspection_bind_address == "127.0.0.1:61679" and config.metrics_port == 61678
    assert config.networkutils_env_settings() == {
        "AWS_EXTERNAL_SERVICE_CIDRS": None, "AWS_VPC_CNI_NODE_PORT_SUPPORT": True, "AWS_VPC_ENI_MTU": 9001,
        "AWS_VPC_K8S_CNI_CONNMARK": 128, "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": None,
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": False, "AWS_VPC_K8S_CNI_RANDOMIZESNAT": 2, "AWS_VPC_K8S_CNI_VETHPREFIX": "eni"}
    assert config.ipamd_env_settings() == {
        "AWS_MANAGE_ENIS_NON_SCHEDULABLE": False, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": False,
        "ENABLE_SUBNET_DISCOVERY": True, "WARM_ENI_TARGET": 1, "WARM_IP_TARGET": 0}


@pytest.mark.parametrize("env,attr,expected", [
    ({"WARM_ENI_TARGET": "-1"}, "warm_eni_target", 1),
    ({"WARM_ENI_TARGET": " 2"}, "warm_eni_target", 1),  # Go's Atoi takes no spaces
    ({"WARM_ENI_TARGET": "0"}, "warm_eni_target", 0),
    ({"MAX_ENI": "0"}, "max_eni", -1),
    ({"MAX_ENI": "2"}, "max_eni", 2),
    ({"IP_COOLDOWN_PERIOD": "x"}, "ip_cooldown_period", 30),
    ({"ENABLE_SUBNET_DISCOVERY": "yes"}, "enable_subnet_discovery", True),  # not a Go bool → default
    ({"AWS_VPC_K8S_CNI_EXTERNALSNAT": "T"}, "external_snat", True),
    ({"AWS_VPC_CNI_NODE_PORT_SUPPORT": "0"}, "node_port_support", False),
    ({"AWS_VPC_K8S_CNI_CONNMARK": "0x100"}, "connmark", 0x100),
    ({"AWS_VPC_K8S_CNI_CONNMARK": "010"}, "connmark", 8),
    ({"AWS_VPC_K8S_CNI_CONNMARK": "0"}, "connmark", 0x80),
    ({"AWS_VPC_K8S_CNI_CONNMARK": "4294967296"}, "connmark", 0x80),
    ({"AWS_VPC_K8S_CNI_CONNMARK": "junk"}, "connmark", 0x80),
    ({"AWS_VPC_K8S_CNI_RANDOMIZESNAT": "hashrandom"}, "snat_mode_number", 1),
    ({"AWS_VPC_K8S_CNI_RANDOMIZESNAT": "none"}, "snat_mode_number", 0),
    ({"AWS_VPC_K8S_CNI_RANDOMIZESNAT": "bogus"}, "randomize_snat", "prng"),
    ({"ADDITIONAL_ENI_TAGS": '{"team":"a","k8s.amazonaws.com/x":"y"}'}, "additional_eni_tags", (("team", "a"),)),
    ({"ADDITIONAL_ENI_TAGS": "{not json"}, "additional_eni_tags", ()),
    ({"HTTP_TIMEOUT": "5"}, "http_timeout", 10),
    ({"HTTP_TIMEOUT": "30"}, "http_timeout", 30),
    ({"INTROSPECTION_BIND_ADDRESS": "unix:/run/i.sock"}, "introspection_bind_address", "unix:/run/i.sock"),
    ({"CLUSTER_NAME": "lab"}, "cluster_name", "lab"),
])
def test_upstream_fallbacks(env, attr, expected):
    assert getattr(parse(env), attr) == expected


def test_effective_max_eni_and_checkpoint_paths():
    # MAX_ENI caps the instance's ENI limit (the one place it is derived: EniLimits.derive)
    assert EniLimits.derive(3, 6, IpamdConfig(max_eni=2).max_eni).max_eni == 2
    assert EniLimits.derive(3, 6, IpamdConfig().max_eni).max_eni == 3
    vector = next(v for v in VECTORS["datastore"] if v["id"] == "ds-initialize-datastores")["checkpoint_paths"]
    for card, path in vector["expected"].items():
        assert checkpoint_path(vector["default_path"], card) == path
        assert IpamdConfig().checkpoint_path(card) == path


def _cidr_cases():
    for group in VECTORS["env_cidr_parsing"]:
        if "cases" not in group:
            continue  # the derived connmark note has no cases
        var = re.search(r"\((AWS_[A-Z0-9_]+)\)", group["source"])
        for case in group["cases"]:
            yield pytest.param(var.group(1), case["value"], case["expected"], id=f"{var.group(1)}={case['value']}")


@pytest.mark.parametrize("var,value,expected", list(_cidr_cases()))
def test_env_cidr_parsing(var, value, expected):
    attr = {"AWS_EXTERNAL_SERVICE_CIDRS": "external_service_cidrs",
            "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "exclude_snat_cidrs"}[var]
    assert list(getattr(parse({var: value}), attr)) == (expected or [])  # Go nil slice ↔ empty


def test_env_cidrs_are_normalised_like_parse_cidr():
    assert parse({"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.1.1/20, 10.0.2.2/20"}).exclude_snat_cidrs == (
        "10.0.0.0/20", "10.0.0.0/20")
    assert parse({"AWS_EXTERNAL_SERVICE_CIDRS": "10.0.0.0/255.0.0.0"}).external_service_cidrs == ()


def _mtu_cases():
    for group in VECTORS["mtu"]:
        for case in group["cases"]:
            if "expected_conflist_plugins_1" in case:
                continue  # conflist rendering belongs to the entrypoint/CNI, not ipamd
            yield pytest.param(group["source"], case, id=f"{group['source'].split()[1]}-{case}")


@pytest.mark.parametrize("source,case", list(_mtu_cases()))
def test_mtu(source, case):
    if "TestGetPodMTU" in source:
        assert get_pod_mtu(case["input"]) == case["expected"]
    elif "TestGetEthernetMTU" in source:
        value = case["AWS_VPC_ENI_MTU"]
        assert parse({} if value == "unset" else {"AWS_VPC_ENI_MTU": value}).eni_mtu == case["expected"]
    else:
        eni = "9001" if case["AWS_VPC_ENI_MTU"] == "unset" else case["AWS_VPC_ENI_MTU"]
        pod = eni if case["POD_MTU"] == "unset" else case["POD_MTU"]
        valid = [validate_mtu_var("AWS_VPC_ENI_MTU", eni, case["ipv6"]) is None,
                 validate_mtu_var("POD_MTU", pod, case["ipv6"]) is None]
        assert valid == case["expected_valid"]
        env = {"AWS_VPC_ENI_MTU": eni, "POD_MTU": pod, "ENABLE_IPv6": str(case["ipv6"]).lower(),
               "ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}
        if all(valid):
            validate_entrypoint_env(env)
        else:
            with pytest.raises(ConfigError):
                validate_entrypoint_env(env)


@pytest.mark.parametrize("text,expected", [
    ("1", True), ("t", True), ("True", True), ("TRUE", True), ("0", False), ("F", False), ("false", False),
    ("yes", None), ("tRUE", None), ("", None), (" true", None),
])
def test_go_parse_bool(text, expected):
    if expected is None:
        with pytest.raises(ValueError):
            goparse.parse_bool(text)
    else:
        assert goparse.parse_bool(text) is expected


@pytest.mark.parametrize("text,expected", [
    ("0x80", 128), ("0X80", 128), ("0o17", 15), ("017", 15), ("0b11", 3), ("1_000", 1000), ("0_17", 15), ("1__0", None), ("0x_80", 128),
    ("-5", -5), ("+7", 7), ("08", None), ("", None), (" 1", None), ("0x", None),
])
def test_go_parse_int_base0(text, expected):
    if expected is None:
        with pytest.raises(ValueError):
            goparse.parse_int_base0(text)
    else:
        assert goparse.parse_int_base0(text) == expected
