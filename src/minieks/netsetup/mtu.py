"""MTU values: the ENI MTU ipamd sets, the pod MTU the plugin uses, and the entrypoint's checks.

Upstream reads MTU in three places with three behaviours (fall back, clamp to default, refuse
to start); keeping them apart keeps each one exact (spec §2.2, §2.3, §7.1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from minieks.goparse import atoi

log = logging.getLogger(__name__)

DEFAULT_MTU = 9001
MIN_MTU_V4 = 576
MIN_MTU_V6 = 1280
MAX_MTU = 9001


def get_pod_mtu(value: str | None) -> int:
    """GetPodMTU: the conflist's mtu, or 9001 when invalid or outside [576, 9001]."""
    try:
        mtu = atoi(value or "")
    except ValueError:
        return DEFAULT_MTU
    return mtu if MIN_MTU_V4 <= mtu <= MAX_MTU else DEFAULT_MTU


def get_ethernet_mtu(env: Mapping[str, str]) -> int:
    """GetEthernetMTU: AWS_VPC_ENI_MTU when it parses as an integer, else 9001."""
    value = env.get("AWS_VPC_ENI_MTU")
    if value is None:
        return DEFAULT_MTU
    try:
        return atoi(value)
    except ValueError:
        log.error("Failed to parse AWS_VPC_ENI_MTU will use %d", DEFAULT_MTU)
        return DEFAULT_MTU


def validate_mtu_var(name: str, value: str | None, ipv6: bool = False) -> str | None:
    """The entrypoint's check of AWS_VPC_ENI_MTU / POD_MTU: None if fine, else its error text."""
    if value is None:
        return None
    try:
        mtu = atoi(value)
    except ValueError:
        return f"{name} MUST be a valid integer. {value} is invalid"
    low, family = (MIN_MTU_V6, "IPv6") if ipv6 else (MIN_MTU_V4, "IPv4")
    if not low <= mtu <= MAX_MTU:
        return f"{name} cannot be less than {low} or greater than {MAX_MTU} in {family}. {value} is invalid"
    return None
