"""Names and numbers the CNI derives: veth and link names, route table ids, gateways.

Upstream derives every interface name and table number from pod identity, device index and
network card (spec §6.3, §7.2), so DEL can tear down without asking ipamd. These functions
are the single source of those derivations for netsetup, cni and fabric.
"""

from __future__ import annotations

import hashlib
import ipaddress

MAIN_TABLE = 254
LOCAL_TABLE = 255
DEFAULT_TABLE = 253

DEFAULT_VETH_PREFIX = "eni"
DUMMY_PREFIX = "dummy"
SGP_STRICT_PREFIX = "vlan"
MULTI_NIC_IFACE_PREFIX = "mNicIf"
VLAN_TABLE_OFFSET = 100
IPV6_ENI_GATEWAY = "fe80:ec2::1"


def veth_suffix(namespace: str, pod_name: str) -> str:
    """The 11 hex digits that make a host veth name unique per pod (sha1 of "ns.pod")."""
    return hashlib.sha1(f"{namespace}.{pod_name}".encode()).hexdigest()[:11]


def host_veth_name(prefix: str, namespace: str, pod_name: str, index: int = 0) -> str:
    """Host-side veth name; interface i>0 of a multi-NIC pod hashes "<pod>.<i>" instead."""
    name = pod_name if index == 0 else f"{pod_name}.{index}"
    return prefix + veth_suffix(namespace, name)


def dummy_iface_name(namespace: str, pod_name: str) -> str:
    """Name of the dummy interface recorded in the CNI result (carries vlan id / device)."""
    return host_veth_name(DUMMY_PREFIX, namespace, pod_name, 0)


def container_iface_name(if_name: str, index: int) -> str:
    """Pod-side name: CNI_IFNAME for the first interface, mNicIf<i> for the others."""
    return if_name if index == 0 else f"{MULTI_NIC_IFACE_PREFIX}{index}"


def branch_veth_prefix(veth_prefix: str, enforcing_mode: str) -> str:
    """Host veth prefix for security-group (branch ENI) pods: 'vlan' unless mode is standard."""
    return veth_prefix if enforcing_mode == "standard" else SGP_STRICT_PREFIX


def vlan_link_name(vlan_id: int) -> str:
    """The VLAN sub-interface a branch-ENI pod uses on the trunk ENI."""
    return f"vlan.eth.{vlan_id}"


def vlan_route_table(vlan_id: int) -> int:
    """Route table of a branch-ENI pod: vlan id + 100."""
    return vlan_id + VLAN_TABLE_OFFSET


def route_table_id(device: int, network_card: int = 0) -> int:
    """Table of an ENI: main for the primary, device+1 on card 0, 10000+d+100c on other cards."""
    if network_card == 0:
        return MAIN_TABLE if device == 0 else device + 1
    return 10000 + device + 100 * network_card


def legacy_route_table_id(device: int, network_card: int, max_enis_per_card: int) -> int:
    """Table older CNI/AMI versions used on cards > 0; only recognised, never created."""
    return device + 1 + network_card * max_enis_per_card


def pod_gateway_ip(index: int, family: int = 4) -> str:
    """The link-local gateway a pod's interface i routes through (169.254.1.(i+1) / fe80::(i+1))."""
    if family == 6:
        return str(ipaddress.IPv6Address("fe80::") + (index + 1))
    return str(ipaddress.IPv4Address("169.254.1.0") + (index + 1))


def pod_route_table(index: int) -> int:
    """Table inside the pod for interface i: main for the first, i for the others."""
    return MAIN_TABLE if index == 0 else index


def eni_subnet_gateway(subnet: str) -> str:
    """The VPC router address of a subnet: network + 1 (IPv6: always fe80:ec2::1)."""
    net = ipaddress.ip_network(subnet, strict=False)
    if net.version == 6:
        return IPV6_ENI_GATEWAY
    return str(net.network_address + 1)


def increment_ip(ip: str) -> str:
    """The next address (carries across octets), as upstream's IncrementIPAddr."""
    return str(ipaddress.ip_address(ip) + 1)


def table_name(table: int) -> str:
    """How iproute2 prints a table id (main/local/default by name, others as numbers)."""
    return {MAIN_TABLE: "main", LOCAL_TABLE: "local", DEFAULT_TABLE: "default"}.get(table, str(table))
