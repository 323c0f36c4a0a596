"""The env variables host network set-up reads (networkutils), parsed as upstream parses them.

One place turns aws-node's environment into typed values (spec §2.1), so the iptables and rule
builders take plain data and tests can feed env tables straight from the conformance vectors.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from minieks.goparse import parse_bool, parse_int_base0
from minieks.netsetup.mtu import get_ethernet_mtu

DEFAULT_CONNMARK = 0x80
_CIDR = re.compile(r"[0-9A-Fa-f:.]+/[0-9]+\Z")


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """getBoolEnvVar: unset or empty → default; unparsable → default (upstream logs it)."""
    value = env.get(name, "")
    if value == "":
        return default
    try:
        return parse_bool(value)
    except ValueError:
        return default


def parse_ipv4_cidrs(value: str) -> list[str] | None:
    """Comma list → IPv4 networks (normalised); IPv6 and invalid entries dropped; none → None."""
    parsed: list[str] = []
    for item in value.split(","):
        item = item.strip()
        if not _CIDR.match(item):
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            parsed.append(str(net))
    return parsed or None


def parse_connmark(value: str | None) -> int:
    """AWS_VPC_K8S_CNI_CONNMARK with Go base prefixes; invalid, ≤0 or >2^32-1 → 0x80."""
    if not value:
        return DEFAULT_CONNMARK
    try:
        mark = parse_int_base0(value)
    except ValueError:
        return DEFAULT_CONNMARK
    return mark if 0 < mark <= 0xFFFFFFFF else DEFAULT_CONNMARK


def parse_randomize_snat(value: str | None) -> str:
    """AWS_VPC_K8S_CNI_RANDOMIZESNAT: prng, hashrandom or none; anything else → prng."""
    return value if value in ("prng", "hashrandom", "none") else "prng"


@dataclass(frozen=True)
class HostNetworkSettings:
    """networkutils' view of the environment."""

    external_snat: bool = False
    exclude_snat_cidrs: tuple[str, ...] = ()
    external_service_cidrs: tuple[str, ...] = ()
    randomize_snat: str = "prng"
    node_port_support: bool = True
    connmark: int = DEFAULT_CONNMARK
    eni_mtu: int = 9001
    veth_prefix: str = "eni"
    v6_egress: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HostNetworkSettings:
        return cls(
            external_snat=env_bool(env, "AWS_VPC_K8S_CNI_EXTERNALSNAT", False),
            exclude_snat_cidrs=tuple(
                parse_ipv4_cidrs(env.get("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "")) or ()),
            external_service_cidrs=tuple(
                parse_ipv4_cidrs(env.get("AWS_EXTERNAL_SERVICE_CIDRS", "")) or ()),
            randomize_snat=parse_randomize_snat(env.get("AWS_VPC_K8S_CNI_RANDOMIZESNAT")),
            node_port_support=env_bool(env, "AWS_VPC_CNI_NODE_PORT_SUPPORT", True),
            connmark=parse_connmark(env.get("AWS_VPC_K8S_CNI_CONNMARK")),
            eni_mtu=get_ethernet_mtu(env),
            veth_prefix=env.get("AWS_VPC_K8S_CNI_VETHPREFIX") or "eni",
            v6_egress=env_bool(env, "ENABLE_V6_EGRESS", False),
        )
