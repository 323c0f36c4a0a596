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
from minieks.ipamd.config import env_bool
from minieks.netsetup import iptables

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
        ipv6 = env_bool(env, "ENABLE_IPv6", False)
        if ipv6:
            egress = env_bool(env, "ENABLE_V4_EGRESS", True)
            node_ip = node_ipv4 if egress else ""
        else:
            egress = env_bool(env, "ENABLE_V6_EGRESS", False) and bool(node_ipv6)
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
            bandwidth=env_bool(env, "ENABLE_BANDWIDTH_PLUGIN", False),
            disable_pod_v6=env_bool(env, "DISABLE_POD_V6", False),
        )


def render_conflist(s: ConflistSettings) -> str:
    """The file's text, exactly as the entrypoint writes it."""
    if s.ipv6:
        subnet, dst = iptables.IPV6_NODE_LOCAL_CIDR, "0.0.0.0/0"
        data_dir, egress_log = "/run/cni/v6pd/egress-v4-ipam", s.egress_v4_log_file
    else:
        subnet, dst = iptables.IPV4_EGRESS_NODE_LOCAL_CIDR, "::/0"
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
