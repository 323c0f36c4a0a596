"""LoadNetConf, CNI_ARGS, the conflist and the result/error JSON (cni_plugin, mtu vectors, §7.1)."""

import json
from pathlib import Path

import pytest
import yaml

from minieks.cni.args import CniArgsError, K8sArgs, parse_cni_args
from minieks.cni.conflist import ConflistSettings, render_conflist
from minieks.ipamd.config import ConfigError, validate_entrypoint_env
from minieks.cni.netconf import NetConfError, load_net_conf
from minieks.cni.result import (CniError, ErrorCode, PodAllocation, Result, add_result,
                                allocation_address, teardown_hint)

VECTORS = yaml.safe_load((Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
PLUGIN = {v["id"]: v for v in VECTORS["cni_plugin"]}

SPEC_CONFLIST = """{
  "cniVersion": "0.4.0",
  "name": "aws-cni",
  "disableCheck": true,
  "plugins": [
    {
      "name": "aws-cni",
      "type": "aws-cni",
      "vethPrefix": "eni",
      "mtu": "9001",
      "podSGEnforcingMode": "strict",
      "pluginLogFile": "/var/log/aws-routed-eni/plugin.log",
      "pluginLogLevel": "DEBUG",
      "capabilities": {"io.kubernetes.cri.pod-annotations": true}
    },
    {
      "name": "egress-cni",
      "type": "egress-cni",
      "mtu": "9001",
      "enabled": "false",
      "randomizeSNAT": "prng",
      "nodeIP": "",
      "ipam": {
         "type": "host-local",
         "ranges": [[{"subnet": "fd00::ac:00/118"}]],
         "routes": [{"dst": "::/0"}],
         "dataDir": "/run/cni/v4pd/egress-v6-ipam"
      },
      "pluginLogFile": "/var/log/aws-routed-eni/egress-v6-plugin.log",
      "pluginLogLevel": "DEBUG"
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true},
      "snat": true
    }
  ]
}"""

MANIFEST_ENV = {"AWS_VPC_K8S_CNI_VETHPREFIX": "eni", "AWS_VPC_ENI_MTU": "9001",
                "AWS_VPC_K8S_PLUGIN_LOG_LEVEL": "DEBUG", "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "prng",
                "ENABLE_IPv6": "false", "ENABLE_PREFIX_DELEGATION": "false", "WARM_PREFIX_TARGET": "1"}


# --- LoadNetConf ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", PLUGIN["load-netconf"]["cases"], ids=lambda c: str(c["input"])[:40])
def test_load_netconf(case):
    raw = case["input"] if isinstance(case["input"], str) else json.dumps(case["input"])
    if "expected_error" in case:
        with pytest.raises(NetConfError) as err:
            load_net_conf(raw)
        assert str(err.value) == case["expected_error"]
    elif "expected_error_contains" in case:
        with pytest.raises(NetConfError, match=case["expected_error_contains"]):
            load_net_conf(raw)
    else:
        conf = load_net_conf(raw)
        got = {"mtu": conf.mtu, "vethPrefix": conf.veth_prefix, "podSGEnforcingMode": conf.pod_sg_enforcing_mode}
        assert got == case["expected"]


def test_load_netconf_go_semantics():
    conf = load_net_conf('{"cniVersion":"0.4.0","name":"n","type":"aws-cni","VETHPREFIX":"ab","mtu":null}')
    assert conf.veth_prefix == "ab" and conf.mtu == "9001"
    with pytest.raises(NetConfError) as err:
        load_net_conf('{"mtu": 1500}')
    assert str(err.value) == ("add cmd: error loading config from args: json: cannot unmarshal number "
                              "into Go struct field NetConf.mtu of type string")


@pytest.mark.parametrize("value,expected", [("1500", 1500), ("abc", 9001), ("500", 9001), ("10000", 9001)])
def test_netconf_pod_mtu_falls_back(value, expected):
    assert load_net_conf(json.dumps({"mtu": value})).pod_mtu == expected


def test_multi_nic_annotation():
    given = PLUGIN["add-multinic"]["input"]
    conf = load_net_conf(json.dumps({"cniVersion": "0.4.0", "name": "aws-cni", "type": "aws-cni",
                                     "runtimeConfig": given["runtimeConfig"]}))
    assert conf.requires_multi_nic
    assert not load_net_conf("{}").requires_multi_nic


@pytest.mark.parametrize("case", PLUGIN["ip-from-allocation-metadata"]["cases"])
def test_ip_from_allocation_metadata(case):
    assert allocation_address(case["IPv4Addr"], case["IPv6Addr"]) == case["expected"]


# --- CNI_ARGS -------------------------------------------------------------------------------

def test_cni_args():
    args = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=sample-pod;"
                          "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;FOO=bar")
    assert args == K8sArgs("sample-pod", "default", "abc", "u-1", True)
    assert parse_cni_args("") == K8sArgs()
    with pytest.raises(CniArgsError, match=r'^ARGS: unknown args \["FOO=bar"\]$'):
        parse_cni_args("K8S_POD_NAME=x;FOO=bar")
    with pytest.raises(CniArgsError, match='^ARGS: invalid pair "K8S_POD_NAME"$'):
        parse_cni_args("K8S_POD_NAME")
    with pytest.raises(CniArgsError, match="boolean unmarshal error"):
        parse_cni_args("IgnoreUnknown=maybe")


# --- results and errors ---------------------------------------------------------------------

def test_add_result_multi_nic():
    """add-multinic: names per index; container mac = route table, dummy sandbox = device."""
    vector = PLUGIN["add-multinic"]
    reply = vector["input"]["add_network_reply"]
    allocs = [PodAllocation(allocation_address(m["IPv4Addr"], ""), m["RouteTableId"], m["DeviceNumber"])
              for m in reply["IPAllocationMetadata"]]
    result = add_result("", "", "eth0", "/proc/42/ns/net", "eni", allocs)
    expected = vector["expected"]["setup_pod_network_args"]
    assert [i.name for i in result.interfaces] == [
        expected[0]["host_veth"], expected[0]["cont_veth"], expected[1]["host_veth"],
        expected[1]["cont_veth"], "dummy3a52ce78095"]
    assert [i.mac for i in result.interfaces[1:4:2]] == ["5", "9"]
    assert (result.interfaces[-1].mac, result.interfaces[-1].sandbox) == ("0", "4")
    assert [(ip.interface, ip.address) for ip in result.ips] == [(1, "10.0.1.15/32"), (3, "10.0.1.30/32")]


def test_result_json_versions():
    result = add_result("default", "sample-pod", "eth0", "/var/run/netns/p", "eni",
                        [PodAllocation("10.0.1.45/32", 2, 1)])
    v1 = json.loads(result.to_json("1.0.0"))
    assert v1 == {"cniVersion": "1.0.0",
                  "interfaces": [{"name": "enicc21c2d7785"},
                                 {"name": "eth0", "mac": "2", "sandbox": "/var/run/netns/p"},
                                 {"name": "dummycc21c2d7785", "mac": "0", "sandbox": "1"}],
                  "ips": [{"interface": 1, "address": "10.0.1.45/32"}], "dns": {}}
    v04 = json.loads(result.to_json("0.4.0"))
    assert v04["ips"] == [{"version": "4", "interface": 1, "address": "10.0.1.45/32"}]
    assert result.to_json().startswith('{\n    "cniVersion": "1.0.0",\n    "interfaces": [')
    assert Result.from_dict(v1).to_dict() == v1


def test_error_json():
    err = CniError(ErrorCode.INTERNAL, "add cmd: failed to assign an IP address to container")
    assert json.loads(err.to_json("1.0.0")) == {
        "cniVersion": "1.0.0", "code": 999, "msg": "add cmd: failed to assign an IP address to container"}
    assert list(json.loads(CniError(7, "bad", "why").to_json("1.0.0"))) == ["cniVersion", "code", "msg", "details"]
    assert CniError.from_dict({"code": 11, "msg": "later"}) == CniError(ErrorCode.TRY_AGAIN_LATER, "later")
    assert (ErrorCode.INCOMPATIBLE_CNI_VERSION, ErrorCode.INVALID_NETWORK_CONFIG) == (1, 7)
    assert PLUGIN["add-failure-message"]["cases"][0]["expected_error"] == err.msg


def _prev(vector):
    given = vector["input"]
    return Result.from_dict({"cniVersion": "1.0.0", "interfaces": given["prevResult_interfaces"],
                             "ips": given.get("prevResult_ips", [{"interface": 1, "address": "10.0.1.15/32"}])})


def test_del_with_prevresult_branch_eni():
    hint = teardown_hint(_prev(PLUGIN["del-with-prevresult-branch-eni"]), "", "", "eth0")
    assert hint.vlan_id == 4 and hint.address == "10.0.1.15/32"


def test_del_when_ipamd_down():
    hint = teardown_hint(_prev(PLUGIN["del-when-ipamd-down"]), "", "", "eth0")
    assert hint.vlan_id == 0 and hint.route_table == 2


def test_prev_result_through_netconf():
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": "x", "sandbox": "/n"},
                                                  {"name": "dummy3a52ce78095", "mac": "0", "sandbox": "3"}],
            "ips": [{"interface": 0, "address": "10.0.1.9/32"}]}
    conf = load_net_conf(json.dumps({"cniVersion": "1.0.0", "prevResult": prev}))
    assert teardown_hint(conf.prev_result, "", "", "eth0").route_table == 4  # device 3 → table 4


# --- conflist and entrypoint ----------------------------------------------------------------

def test_spec_conflist_verbatim():
    text = render_conflist(ConflistSettings.from_env(MANIFEST_ENV))
    assert text.rstrip("\n") == SPEC_CONFLIST
    json.loads(text)


@pytest.mark.parametrize("case", VECTORS["mtu"][3]["cases"], ids=lambda c: c["POD_MTU"])
def test_egress_plugin_takes_pod_mtu(case):
    for ipv6 in ("false", "true"):
        env = {**MANIFEST_ENV, "POD_MTU": case["POD_MTU"], "ENABLE_IPv6": ipv6}
        plugin = json.loads(render_conflist(ConflistSettings.from_env(env, node_ipv4="10.0.0.5")))["plugins"][1]
        assert {k: plugin[k] for k in case["expected_conflist_plugins_1"]} == case["expected_conflist_plugins_1"]


def test_conflist_ipv6_and_chaining():
    v6 = json.loads(render_conflist(ConflistSettings.from_env({"ENABLE_IPv6": "true"}, node_ipv4="10.0.0.5")))
    egress = v6["plugins"][1]
    assert (egress["enabled"], egress["nodeIP"]) == ("true", "10.0.0.5")
    assert egress["ipam"]["ranges"] == [[{"subnet": "169.254.172.0/22"}]]
    assert egress["ipam"]["dataDir"] == "/run/cni/v6pd/egress-v4-ipam"
    no_v6 = ConflistSettings.from_env({"ENABLE_V6_EGRESS": "true"})
    assert not no_v6.egress_enabled  # no node IPv6 → disabled
    chained = render_conflist(ConflistSettings(bandwidth=True, disable_pod_v6=True))
    plugins = json.loads(chained)["plugins"]
    assert [p["type"] for p in plugins][-2:] == ["bandwidth", "tuning"]
    assert chained.startswith('{\n  "cniVersion": "0.4.0",\n  "disableCheck": true,')


def entrypoint_errors(env: dict[str, str]) -> list[str]:
    """The entrypoint's verdict on env: [] when aws-node starts, else [the message it exits with]."""
    try:
        validate_entrypoint_env(env)
    except ConfigError as err:
        return [str(err)]
    return []


def test_entrypoint_errors():
    assert entrypoint_errors(MANIFEST_ENV) == []
    assert entrypoint_errors({"AWS_VPC_K8S_CNI_VETHPREFIX": "abcde"}) == [
        "AWS_VPC_K8S_CNI_VETHPREFIX cannot be longer than 4 characters"]
    assert entrypoint_errors({"AWS_VPC_K8S_CNI_VETHPREFIX": "vlan"}) == [
        "AWS_VPC_K8S_CNI_VETHPREFIX cannot be set to reserved values 'eth', 'vlan', or 'lo'"]
    assert entrypoint_errors({"AWS_VPC_K8S_PLUGIN_LOG_FILE": "stdout"}) == [
        "AWS_VPC_K8S_PLUGIN_LOG_FILE cannot be set to stdout"]
    assert entrypoint_errors({"IP_COOLDOWN_PERIOD": "x"}) == [
        "IP_COOLDOWN_PERIOD MUST be a valid positive integer. x is invalid"]
    # upstream checks the cooldown before prefix delegation
    assert entrypoint_errors({"IP_COOLDOWN_PERIOD": "-1", "ENABLE_PREFIX_DELEGATION": "true"}) == [
        "IP_COOLDOWN_PERIOD MUST be a valid positive integer. -1 is invalid"]
    pd = {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "0"}
    assert entrypoint_errors(pd)[0].startswith("Setting WARM_PREFIX_TARGET = 0 is not supported")
    assert entrypoint_errors({**pd, "WARM_IP_TARGET": "00"}) == []  # upstream's string comparison
    assert entrypoint_errors({"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "x"}) == [
        "POD_SECURITY_GROUP_ENFORCING_MODE must be set to either 'strict' or 'standard'"]
