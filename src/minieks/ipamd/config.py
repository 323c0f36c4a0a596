"""ipamd's configuration, read from environment variables the way upstream reads them (spec §2).

Parsing mirrors upstream helper by helper (Go ParseBool, Atoi, fallbacks to the code default, not
the manifest value), and start-up validation raises ConfigError with upstream's exact text, so a
bad aws-node manifest fails here as it does on EKS. Neighbours: datastore.py takes the cooldown,
decisions.py takes the warm targets (`WarmTargets.from_config`), the pool loop takes the rest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from minieks import goparse
from minieks.netsetup.mtu import DEFAULT_MTU, get_ethernet_mtu, validate_mtu_var

log = logging.getLogger(__name__)

DEFAULT_BACKING_STORE = "/var/run/aws-node/ipam.json"
DEFAULT_INTROSPECTION_ADDRESS = "127.0.0.1:61679"
DEFAULT_METRICS_PORT = 61678
DEFAULT_LOG_FILE = "/host/var/log/aws-routed-eni/ipamd.log"
DEFAULT_PLUGIN_LOG_FILE = "/var/log/aws-routed-eni/plugin.log"
DEFAULT_ENI_CONFIG_KEY = "k8s.amazonaws.com/eniConfig"
DEFAULT_CONNMARK = 0x80
DEFAULT_IP_COOLDOWN_SECONDS = 30
DEFAULT_HTTP_TIMEOUT_SECONDS = 10
SNAT_MODES = {"none": 0, "hashrandom": 1, "prng": 2}  # the numeric form introspection shows
NETWORK_POLICY_MODES = ("none", "strict", "standard")

MSG_PLUGIN_LOG_STDOUT = "AWS_VPC_K8S_PLUGIN_LOG_FILE cannot be set to stdout"
MSG_VETH_TOO_LONG = "AWS_VPC_K8S_CNI_VETHPREFIX cannot be longer than 4 characters"
MSG_VETH_RESERVED = "AWS_VPC_K8S_CNI_VETHPREFIX cannot be set to reserved values 'eth', 'vlan', or 'lo'"
MSG_SG_MODE = "POD_SECURITY_GROUP_ENFORCING_MODE must be set to either 'strict' or 'standard'"
MSG_PD_NO_TARGET = (
    "Setting WARM_PREFIX_TARGET = 0 is not supported while WARM_IP_TARGET/MINIMUM_IP_TARGET is not "
    "set. Please configure either one of the WARM_{PREFIX/IP}_TARGET or MINIMUM_IP_TARGET env variables"
)
MSG_DUAL_STACK = "IPv4 and IPv6 are both enabled. VPC CNI currently does not support dual stack mode"
MSG_NO_STACK = "IPv4 and IPv6 are both disabled. One of them have to be enabled"
MSG_V6_NEEDS_PD = (
    "IPv6 is supported only in Prefix Delegation mode. Custom Networking is not supported in IPv6 "
    "mode. Please set the env variables accordingly."
)
MSG_NP_MODE = "invalid Network policy mode, supported modes: none, strict, standard"


class ConfigError(Exception):
    """A configuration upstream refuses to start with; str() is upstream's message."""


# --- upstream's parsing helpers -------------------------------------------------------------

def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """GetBoolAsStringEnvVar / parseBoolEnvVar: unset, empty or unparsable → default."""
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return goparse.parse_bool(value)
    except ValueError as err:
        log.error("Failed to parse %s; using default: %s, err: %s", name, default, err)
        return default


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    """utils.GetEnv: the value when set (even empty), else the default."""
    value = env.get(name)
    return default if value is None else value


def env_target(env: Mapping[str, str], name: str, default: int) -> int:
    """Warm/minimum targets: unset, non-integer or negative → the code default."""
    value = env.get(name)
    if value is None:
        return default
    try:
        number = goparse.atoi(value)
    except ValueError:
        log.error("Failed to parse %s %r; using %d", name, value, default)
        return default
    return default if number < 0 else number


def env_max_eni(env: Mapping[str, str]) -> int:
    """MAX_ENI: only a value ≥ 1 caps the ENI count; -1 means no cap."""
    try:
        number = goparse.atoi(env.get("MAX_ENI", ""))
    except ValueError:
        return -1
    return number if number >= 1 else -1


def env_cooldown(env: Mapping[str, str]) -> int:
    """The datastore's IP_COOLDOWN_PERIOD: a non-integer → 30 s (the entrypoint rejects negatives)."""
    try:
        return goparse.atoi(env.get("IP_COOLDOWN_PERIOD", ""))
    except ValueError:
        return DEFAULT_IP_COOLDOWN_SECONDS


def env_cidrs(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma list of IPv4 CIDRs, trimmed, normalised to the network; IPv6 and junk are dropped."""
    kept: list[str] = []
    for item in env.get(name, "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            network = goparse.parse_cidr(item)
        except ValueError:
            log.warning("Invalid CIDR %r in %s; ignored", item, name)
            continue
        if network.version != 4:
            log.warning("IPv6 CIDR %r in %s is not supported; ignored", item, name)
            continue
        kept.append(str(network))
    return tuple(kept)


def env_connmark(env: Mapping[str, str]) -> int:
    """AWS_VPC_K8S_CNI_CONNMARK with Go base prefixes; ≤0, >2^32-1 or unparsable → 0x80."""
    value = env.get("AWS_VPC_K8S_CNI_CONNMARK", "")
    if value == "":
        return DEFAULT_CONNMARK
    try:
        mark = goparse.parse_int_base0(value)
    except ValueError:
        log.error("Failed to parse AWS_VPC_K8S_CNI_CONNMARK %r; using default 0x80", value)
        return DEFAULT_CONNMARK
    if mark <= 0 or mark > 2**32 - 1:
        log.error("AWS_VPC_K8S_CNI_CONNMARK %r out of range; using default 0x80", value)
        return DEFAULT_CONNMARK
    return mark


def env_snat_mode(env: Mapping[str, str]) -> str:
    """AWS_VPC_K8S_CNI_RANDOMIZESNAT: prng, hashrandom or none; anything else → prng."""
    value = env.get("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "")
    if value in ("", "prng"):
        return "prng"
    if value in SNAT_MODES:
        return value
    log.error("Failed to parse AWS_VPC_K8S_CNI_RANDOMIZESNAT; using default: prng, provided: %s", value)
    return "prng"


def env_additional_tags(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """ADDITIONAL_ENI_TAGS: a JSON object of strings; invalid JSON is ignored, reserved keys dropped."""
    raw = env.get("ADDITIONAL_ENI_TAGS", "")
    if raw == "":
        return ()
    try:
        tags = json.loads(raw)
    except ValueError as err:
        log.warning("Failed to add additional tags to the ENI: %s", err)
        return ()
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        log.warning("ADDITIONAL_ENI_TAGS is not a map of strings; ignored")
        return ()
    kept = []
    for key, value in tags.items():
        if "k8s.amazonaws.com" in key:
            log.warning("Additional tags key %s contains k8s.amazonaws.com, which is not allowed", key)
            continue
        kept.append((key, value))
    return tuple(sorted(kept))


def env_http_timeout(env: Mapping[str, str]) -> int:
    """HTTP_TIMEOUT in seconds; values below 10 (or unparsable) are ignored."""
    try:
        seconds = goparse.atoi(env.get("HTTP_TIMEOUT", ""))
    except ValueError:
        return DEFAULT_HTTP_TIMEOUT_SECONDS
    return seconds if seconds >= DEFAULT_HTTP_TIMEOUT_SECONDS else DEFAULT_HTTP_TIMEOUT_SECONDS


# --- start-up validation ----------------------------------------------------------------------

def validate_entrypoint_env(env: Mapping[str, str]) -> None:
    """The aws-node entrypoint's checks (§2.3), in upstream's order; the first failure is raised."""
    if env_str(env, "AWS_VPC_K8S_PLUGIN_LOG_FILE", DEFAULT_PLUGIN_LOG_FILE) == "stdout":
        raise ConfigError(MSG_PLUGIN_LOG_STDOUT)
    veth_prefix = env_str(env, "AWS_VPC_K8S_CNI_VETHPREFIX", "eni")
    if len(veth_prefix) > 4:
        raise ConfigError(MSG_VETH_TOO_LONG)
    if veth_prefix in ("eth", "vlan", "lo"):
        raise ConfigError(MSG_VETH_RESERVED)
    if env_bool(env, "ENABLE_POD_ENI", False):
        if env_str(env, "POD_SECURITY_GROUP_ENFORCING_MODE", "strict") not in ("strict", "standard"):
            raise ConfigError(MSG_SG_MODE)
    cooldown = env_str(env, "IP_COOLDOWN_PERIOD", str(DEFAULT_IP_COOLDOWN_SECONDS))
    try:
        if goparse.atoi(cooldown) < 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"IP_COOLDOWN_PERIOD MUST be a valid positive integer. {cooldown} is invalid") from None
    if env_bool(env, "ENABLE_PREFIX_DELEGATION", False):
        # Upstream compares the raw strings lexicographically, so "-1" and "" also count as <= "0".
        if all(env_str(env, name, "0") <= "0"
               for name in ("WARM_IP_TARGET", "WARM_PREFIX_TARGET", "MINIMUM_IP_TARGET")):
            raise ConfigError(MSG_PD_NO_TARGET)
    ipv6 = env_bool(env, "ENABLE_IPv6", False)
    eni_mtu = env_str(env, "AWS_VPC_ENI_MTU", str(DEFAULT_MTU))
    for name, default in (("AWS_VPC_ENI_MTU", str(DEFAULT_MTU)), ("POD_MTU", eni_mtu)):
        error = validate_mtu_var(name, env_str(env, name, default), ipv6)
        if error:
            raise ConfigError(error)


# --- the configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class IpamdConfig:
    """Every setting ipamd and its networkutils read, with upstream's code defaults."""

    warm_eni_target: int = 1
    warm_ip_target: int = 0
    minimum_ip_target: int = 0
    warm_prefix_target: int = 0
    max_eni: int = -1
    enable_prefix_delegation: bool = False
    enable_ipv4: bool = False  # false in code; the manifest sets "true"
    enable_ipv6: bool = False
    custom_network_cfg: bool = False
    eni_config_annotation_def: str = DEFAULT_ENI_CONFIG_KEY
    eni_config_label_def: str = DEFAULT_ENI_CONFIG_KEY
    manage_enis_non_schedulable: bool = False
    enable_subnet_discovery: bool = True
    disable_network_resource_provisioning: bool = False
    disable_leaked_eni_cleanup: bool = False
    enable_imds_only_mode: bool = False
    backing_store: str = DEFAULT_BACKING_STORE
    enable_pod_eni: bool = False
    pod_security_group_enforcing_mode: str = "strict"
    node_name: str = ""
    pod_name: str = ""
    manage_untagged_eni: bool = True
    annotate_pod_ip: bool = False
    network_policy_enforcing_mode: str = ""
    enable_multi_nic: bool = False
    ip_cooldown_period: int = DEFAULT_IP_COOLDOWN_SECONDS
    introspection_bind_address: str = DEFAULT_INTROSPECTION_ADDRESS
    disable_introspection: bool = False
    disable_metrics: bool = False
    metrics_port: int = DEFAULT_METRICS_PORT
    log_level: str = "Debug"
    log_file: str = DEFAULT_LOG_FILE
    cluster_name: str = ""
    additional_eni_tags: tuple[tuple[str, str], ...] = ()
    vpc_cni_version: str = ""
    cluster_endpoint: str = ""
    http_timeout: int = DEFAULT_HTTP_TIMEOUT_SECONDS
    aws_ec2_endpoint: str = ""
    external_snat: bool = False
    exclude_snat_cidrs: tuple[str, ...] = ()
    external_service_cidrs: tuple[str, ...] = ()
    randomize_snat: str = "prng"
    node_port_support: bool = True
    connmark: int = DEFAULT_CONNMARK
    eni_mtu: int = DEFAULT_MTU
    veth_prefix: str = "eni"
    enable_v6_egress: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, validate: bool = True) -> IpamdConfig:
        """Read every variable; with `validate`, apply the entrypoint and instance-free ipamd checks.

        The IPv4/IPv6 checks follow the code default ENABLE_IPv4=false, so an env without
        ENABLE_IPv4=true fails exactly as a manifest that forgot it would.
        """
        if validate:
            validate_entrypoint_env(env)
        config = cls(
            warm_eni_target=env_target(env, "WARM_ENI_TARGET", 1),
            warm_ip_target=env_target(env, "WARM_IP_TARGET", 0),
            minimum_ip_target=env_target(env, "MINIMUM_IP_TARGET", 0),
            warm_prefix_target=env_target(env, "WARM_PREFIX_TARGET", 0),
            max_eni=env_max_eni(env),
            enable_prefix_delegation=env_bool(env, "ENABLE_PREFIX_DELEGATION", False),
            enable_ipv4=env_bool(env, "ENABLE_IPv4", False),
            enable_ipv6=env_bool(env, "ENABLE_IPv6", False),
            custom_network_cfg=env_bool(env, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", False),
            eni_config_annotation_def=env.get("ENI_CONFIG_ANNOTATION_DEF") or DEFAULT_ENI_CONFIG_KEY,
            eni_config_label_def=env.get("ENI_CONFIG_LABEL_DEF") or DEFAULT_ENI_CONFIG_KEY,
            manage_enis_non_schedulable=env_bool(env, "AWS_MANAGE_ENIS_NON_SCHEDULABLE", False),
            enable_subnet_discovery=env_bool(env, "ENABLE_SUBNET_DISCOVERY", True),
            disable_network_resource_provisioning=env_bool(env, "DISABLE_NETWORK_RESOURCE_PROVISIONING", False),
            disable_leaked_eni_cleanup=env_bool(env, "DISABLE_LEAKED_ENI_CLEANUP", False),
            enable_imds_only_mode=env_bool(env, "ENABLE_IMDS_ONLY_MODE", False),
            backing_store=env_str(env, "AWS_VPC_K8S_CNI_BACKING_STORE", DEFAULT_BACKING_STORE),
            enable_pod_eni=env_bool(env, "ENABLE_POD_ENI", False),
            pod_security_group_enforcing_mode=env_str(env, "POD_SECURITY_GROUP_ENFORCING_MODE", "strict"),
            node_name=env.get("MY_NODE_NAME", ""),
            pod_name=env.get("MY_POD_NAME", ""),
            manage_untagged_eni=env_bool(env, "MANAGE_UNTAGGED_ENI", True),
            annotate_pod_ip=env_bool(env, "ANNOTATE_POD_IP", False),
            network_policy_enforcing_mode=env.get("NETWORK_POLICY_ENFORCING_MODE", ""),
            enable_multi_nic=env_bool(env, "ENABLE_MULTI_NIC", False),
            ip_cooldown_period=env_cooldown(env),
            introspection_bind_address=env.get("INTROSPECTION_BIND_ADDRESS") or DEFAULT_INTROSPECTION_ADDRESS,
            disable_introspection=env_bool(env, "DISABLE_INTROSPECTION", False),
            disable_metrics=env_bool(env, "DISABLE_METRICS", False),
            log_level=env_str(env, "AWS_VPC_K8S_CNI_LOGLEVEL", "Debug"),
            log_file=env_str(env, "AWS_VPC_K8S_CNI_LOG_FILE", DEFAULT_LOG_FILE),
            cluster_name=env.get("CLUSTER_NAME", ""),
            additional_eni_tags=env_additional_tags(env),
            vpc_cni_version=env.get("VPC_CNI_VERSION", ""),
            cluster_endpoint=env.get("CLUSTER_ENDPOINT", ""),
            http_timeout=env_http_timeout(env),
            aws_ec2_endpoint=env.get("AWS_EC2_ENDPOINT", ""),
            external_snat=env_bool(env, "AWS_VPC_K8S_CNI_EXTERNALSNAT", False),
            exclude_snat_cidrs=env_cidrs(env, "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"),
            external_service_cidrs=env_cidrs(env, "AWS_EXTERNAL_SERVICE_CIDRS"),
            randomize_snat=env_snat_mode(env),
            node_port_support=env_bool(env, "AWS_VPC_CNI_NODE_PORT_SUPPORT", True),
            connmark=env_connmark(env),
            eni_mtu=get_ethernet_mtu(env),
            veth_prefix=env_str(env, "AWS_VPC_K8S_CNI_VETHPREFIX", "eni"),
            enable_v6_egress=env_bool(env, "ENABLE_V6_EGRESS", False),
        )
        if validate:
            config.check_stack()
        return config

    # --- validation that needs the whole config or the instance ---

    def check_stack(self) -> None:
        """The instance-independent part of isConfigValid, plus the network-policy mode check."""
        if self.enable_ipv4 and self.enable_ipv6:
            raise ConfigError(MSG_DUAL_STACK)
        if not self.enable_ipv4 and not self.enable_ipv6:
            raise ConfigError(MSG_NO_STACK)
        if self.enable_ipv6 and (self.custom_network_cfg or not self.enable_prefix_delegation):
            raise ConfigError(MSG_V6_NEEDS_PD)
        mode = self.network_policy_enforcing_mode
        if mode and mode.lower() not in NETWORK_POLICY_MODES:
            raise ConfigError(MSG_NP_MODE)

    def for_instance(self, instance_type: str, pd_supported: bool) -> IpamdConfig:
        """isConfigValid's instance check: PD needs nitro or bare metal.

        IPv6 without PD support is fatal; IPv4 falls back to secondary-IP mode with a warning,
        returning a copy with PD off (upstream flips its own flag the same way).
        """
        self.check_stack()
        if not self.enable_prefix_delegation or pd_supported:
            return self
        if self.enable_ipv6:
            raise ConfigError(
                f"Prefix Delegation is not supported on non-nitro instance {instance_type}. "
                "IPv6 is only supported in Prefix delegation Mode.")
        log.warning("Prefix delegation is not supported on non-nitro instance %s hence falling back "
                    "to default (secondary IP) mode", instance_type)
        return dataclasses.replace(self, enable_prefix_delegation=False)

    # --- derived settings ---

    @property
    def provisioning_disabled(self) -> bool:
        """No EC2 writes: asked for, or implied by IMDS-only mode."""
        return self.disable_network_resource_provisioning or self.enable_imds_only_mode

    @property
    def leaked_eni_cleanup_disabled(self) -> bool:
        """The hourly leaked-ENI job runs only in IPv4 with provisioning and EC2 access."""
        return self.disable_leaked_eni_cleanup or self.enable_ipv6 or self.provisioning_disabled

    @property
    def snat_mode_number(self) -> int:
        return SNAT_MODES[self.randomize_snat]

    def checkpoint_path(self, network_card: int = 0) -> str:
        """Card 0 uses the backing store path; card N replaces `.json` with `-nic-N.json`."""
        return checkpoint_path(self.backing_store, network_card)

    def ipamd_env_settings(self) -> dict[str, object]:
        """/v1/ipamd-env-settings as introspection serves it (sorted keys)."""
        return {
            "AWS_MANAGE_ENIS_NON_SCHEDULABLE": self.manage_enis_non_schedulable,
            "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": self.custom_network_cfg,
            "ENABLE_SUBNET_DISCOVERY": self.enable_subnet_discovery,
            "WARM_ENI_TARGET": self.warm_eni_target,
            "WARM_IP_TARGET": self.warm_ip_target,
        }

    def networkutils_env_settings(self) -> dict[str, object]:
        """/v1/networkutils-env-settings (empty CIDR lists are Go nil → null)."""
        return {
            "AWS_EXTERNAL_SERVICE_CIDRS": list(self.external_service_cidrs) or None,
            "AWS_VPC_CNI_NODE_PORT_SUPPORT": self.node_port_support,
            "AWS_VPC_ENI_MTU": self.eni_mtu,
            "AWS_VPC_K8S_CNI_CONNMARK": self.connmark,
            "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": list(self.exclude_snat_cidrs) or None,
            "AWS_VPC_K8S_CNI_EXTERNALSNAT": self.external_snat,
            "AWS_VPC_K8S_CNI_RANDOMIZESNAT": self.snat_mode_number,
            "AWS_VPC_K8S_CNI_VETHPREFIX": self.veth_prefix,
        }


def checkpoint_path(base: str, network_card: int) -> str:
    """The checkpoint file of a network card (§4.5)."""
    if network_card == 0:
        return base
    if base.endswith(".json"):
        return f"{base[:-len('.json')]}-nic-{network_card}.json"
    return f"{base}-nic-{network_card}"
