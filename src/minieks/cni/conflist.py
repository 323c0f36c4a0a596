"""The `10-aws.conflist` the aws-node entrypoint writes (spec §7.1), and the checks before it.

Upstream fills a template by plain string substitution, so the default file keeps the
template's layout byte for byte; only when bandwidth or tuning plugins are chained is the JSON
re-marshalled (Go: sorted keys, 2-space indent). The entrypoint refuses bad env first (§2.3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from minieks.cni import gojson
from minieks.goparse import atoi, parse_bool
from minieks.netsetup.mtu import validate_mtu_var

_TEMPLATE = """{
  "cniVersion": "0.4.0",
  "name": "aws-cni",
  "disableCheck": true,
  "plugins": [
    {
      "name": "aws-cni",
      "type": "aws-cni",
      "vethPrefix": "@VETH_PREFIX@",
      "mtu": "@MTU@",
      "podSGEnforcingMode": "@SG_MODE@",
      "pluginLogFile": "@LOG_FILE@",
      "pluginLogLevel": "@LOG_LEVEL@",
      "capabilities": {"io.kubernetes.cri.pod-annotations": true}
    },
    {
      "name": "egress-cni",
      "type": "egress-cni",
      "mtu": "@MTU@",
      "enabled": "@EGRESS_ENABLED@",
      "randomizeSNAT": "@RANDOMIZE_SNAT@",
      "nodeIP": "@NODE_IP@",
      "ipam": {
         "type": "host-local",
         "ranges": [[{"subnet": "@EGRESS_SUBNET@"}]],
         "routes": [{"dst": "@EGRESS_DST@"}],
         "dataDir": "@EGRESS_DATA_DIR@"
      },
      "pluginLogFile": "@EGRESS_LOG_FILE@",
      "pluginLogLevel": "@LOG_LEVEL@"
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true},
      "snat": true
    }
  ]
}
"""

BANDWIDTH_PLUGIN = {"type": "bandwidth", "capabilities": {"bandwidth": True}}
TUNING_PLUGIN = {"type": "tuning", "sysctl": {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv6.conf.lo.disable_ipv6": "1",
}}


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    try:
        return parse_bool(value)
    except ValueError:
        return default


@dataclass(frozen=True)
class ConflistSettings:
    """Entrypoint inputs of the conflist; `from_env` applies the §2.2 defaults."""

    veth_prefix: str = "eni"
    mtu: str = "9001"
    pod_sg_enforcing_mode: str = "strict"
    plugin_log_file: str = "/var/log/aws-routed-eni/plugin.log"
    plugin_log_level: str = "Debug"
    ipv6: bool = False
    egress_enabled: bool = False
    randomize_snat: str = "prng"
    node_ip: str = ""
    egress_v4_log_file: str = "/var/log/aws-routed-eni/egress-v4-plugin.log"
    egress_v6_log_file: str = "/var/log/aws-routed-eni/egress-v6-plugin.log"
    bandwidth: bool = False
    disable_pod_v6: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], node_ipv4: str = "", node_ipv6: str = "") -> ConflistSettings:
        """Read the entrypoint's env; IPv4 v6-egress needs the node IPv6, else it stays off."""
        ipv6 = _env_bool(env, "ENABLE_IPv6", False)
        if ipv6:
            egress = _env_bool(env, "ENABLE_V4_EGRESS", True)
            node_ip = node_ipv4 if egress else ""
        else:
            egress = _env_bool(env, "ENABLE_V6_EGRESS", False) and bool(node_ipv6)
            node_ip = node_ipv6 if egress else ""
        eni_mtu = env.get("AWS_VPC_ENI_MTU", "9001")
        return cls(
            veth_prefix=env.get("AWS_VPC_K8S_CNI_VETHPREFIX", "eni"),
            mtu=env.get("POD_MTU", eni_mtu),
            pod_sg_enforcing_mode=env.get("POD_SECURITY_GROUP_ENFORCING_MODE", "strict"),
            plugin_log_file=env.get("AWS_VPC_K8S_PLUGIN_LOG_FILE", cls.plugin_log_file),
            plugin_log_level=env.get("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", cls.plugin_log_level),
            ipv6=ipv6,
            egress_enabled=egress,
            randomize_snat=env.get("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "prng"),
            node_ip=node_ip,
            egress_v4_log_file=env.get("AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE", cls.egress_v4_log_file),
            egress_v6_log_file=env.get("AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE", cls.egress_v6_log_file),
            bandwidth=_env_bool(env, "ENABLE_BANDWIDTH_PLUGIN", False),
            disable_pod_v6=_env_bool(env, "DISABLE_POD_V6", False),
        )


def render_conflist(s: ConflistSettings) -> str:
    """The file's text, exactly as the entrypoint writes it."""
    if s.ipv6:
        subnet, dst = "169.254.172.0/22", "0.0.0.0/0"
        data_dir, egress_log = "/run/cni/v6pd/egress-v4-ipam", s.egress_v4_log_file
    else:
        subnet, dst = "fd00::ac:00/118", "::/0"
        data_dir, egress_log = "/run/cni/v4pd/egress-v6-ipam", s.egress_v6_log_file
    values = {
        "@VETH_PREFIX@": s.veth_prefix, "@MTU@": s.mtu, "@SG_MODE@": s.pod_sg_enforcing_mode,
        "@LOG_FILE@": s.plugin_log_file, "@LOG_LEVEL@": s.plugin_log_level,
        "@EGRESS_ENABLED@": "true" if s.egress_enabled else "false",
        "@RANDOMIZE_SNAT@": s.randomize_snat, "@NODE_IP@": s.node_ip,
        "@EGRESS_SUBNET@": subnet, "@EGRESS_DST@": dst, "@EGRESS_DATA_DIR@": data_dir,
        "@EGRESS_LOG_FILE@": egress_log,
    }
    text = _TEMPLATE
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    if not (s.bandwidth or s.disable_pod_v6):
        return text
    data = json.loads(text)
    if s.bandwidth:
        data["plugins"].append(BANDWIDTH_PLUGIN)
    if s.disable_pod_v6:
        data["plugins"].append(TUNING_PLUGIN)
    return gojson.dumps(data, indent=2, sort_keys=True)


def entrypoint_errors(env: Mapping[str, str]) -> list[str]:
    """The entrypoint's start-up checks (§2.3), in order; any error makes aws-node exit 1."""
    errors: list[str] = []
    if env.get("AWS_VPC_K8S_PLUGIN_LOG_FILE", "").lower() == "stdout":
        errors.append("AWS_VPC_K8S_PLUGIN_LOG_FILE cannot be set to stdout")
    prefix = env.get("AWS_VPC_K8S_CNI_VETHPREFIX", "eni")
    if len(prefix) > 4:
        errors.append("AWS_VPC_K8S_CNI_VETHPREFIX cannot be longer than 4 characters")
    if prefix in ("eth", "vlan", "lo"):
        errors.append("AWS_VPC_K8S_CNI_VETHPREFIX cannot be set to reserved values 'eth', 'vlan', or 'lo'")
    if _env_bool(env, "ENABLE_POD_ENI", False) and \
            env.get("POD_SECURITY_GROUP_ENFORCING_MODE", "strict") not in ("strict", "standard"):
        errors.append("POD_SECURITY_GROUP_ENFORCING_MODE must be set to either 'strict' or 'standard'")
    cooldown = env.get("IP_COOLDOWN_PERIOD", "30")
    try:
        if atoi(cooldown) < 0:
            raise ValueError(cooldown)
    except ValueError:
        errors.append(f"IP_COOLDOWN_PERIOD MUST be a valid positive integer. {cooldown} is invalid")
    if _env_bool(env, "ENABLE_PREFIX_DELEGATION", False):
        # Upstream compares the raw strings lexicographically; kept on purpose.
        if all(env.get(v, "0") <= "0" for v in ("WARM_IP_TARGET", "WARM_PREFIX_TARGET", "MINIMUM_IP_TARGET")):
            errors.append("Setting WARM_PREFIX_TARGET = 0 is not supported while WARM_IP_TARGET/"
                          "MINIMUM_IP_TARGET is not set. Please configure either one of the "
                          "WARM_{PREFIX/IP}_TARGET or MINIMUM_IP_TARGET env variables")
    ipv6 = _env_bool(env, "ENABLE_IPv6", False)
    for name in ("AWS_VPC_ENI_MTU", "POD_MTU"):
        error = validate_mtu_var(name, env.get(name), ipv6)
        if error:
            errors.append(error)
    return errors
