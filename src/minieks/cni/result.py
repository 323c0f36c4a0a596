"""CNI result and error JSON (CNI spec 1.0.0, and the 0.3.x/0.4.0 forms a conflist may ask for).

The aws-cni result overloads two fields on purpose (spec §7.3): the container interface's `mac`
holds the pod's route table id and the dummy interface's `mac`/`sandbox` hold the VLAN id and
device number, so DEL can tear down from prevResult when ipamd is unreachable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from minieks.cni import gojson
from minieks.netsetup import names

LEGACY_VERSIONS = ("0.3.0", "0.3.1", "0.4.0")


class ErrorCode(IntEnum):
    """Well-known CNI error codes (spec "Error" section); 999 is what libcni's skel wraps with."""

    INCOMPATIBLE_CNI_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT_VARIABLES = 4
    IO_FAILURE = 5
    DECODING_FAILURE = 6
    INVALID_NETWORK_CONFIG = 7
    INVALID_NETNS = 8
    TRY_AGAIN_LATER = 11
    PLUGIN_NOT_AVAILABLE = 50
    LIMITED_CONNECTIVITY = 51
    INTERNAL = 999


@dataclass(frozen=True)
class CniError(Exception):
    """A plugin failure as printed on stdout (exit code 1)."""

    code: int
    msg: str
    details: str = ""

    def to_dict(self, cni_version: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if cni_version:
            out["cniVersion"] = cni_version
        out["code"] = int(self.code)
        out["msg"] = self.msg
        if self.details:
            out["details"] = self.details
        return out

    def to_json(self, cni_version: str | None = None) -> str:
        """Pretty-printed (4-space) JSON, as libcni prints it."""
        return gojson.dumps(self.to_dict(cni_version), indent=4)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CniError:
        return cls(int(data.get("code", 0)), str(data.get("msg", "")), str(data.get("details", "")))


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if self.sandbox:
            out["sandbox"] = self.sandbox
        return out


@dataclass(frozen=True)
class IPConfig:
    address: str
    interface: int | None = None
    gateway: str = ""

    def version(self) -> str:
        return str(ipaddress.ip_interface(self.address).version)

    def to_dict(self, legacy: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version()} if legacy else {}
        if self.interface is not None:
            out["interface"] = self.interface
        out["address"] = self.address
        if self.gateway:
            out["gateway"] = self.gateway
        return out


@dataclass(frozen=True)
class RouteEntry:
    dst: str
    gw: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"dst": self.dst, **({"gw": self.gw} if self.gw else {})}


@dataclass
class Result:
    """A CNI result; `to_json(version)` prints it the way the conflist's cniVersion asks."""

    cni_version: str = "1.0.0"
    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    routes: list[RouteEntry] = field(default_factory=list)
    dns: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, cni_version: str | None = None) -> dict[str, Any]:
        version = cni_version or self.cni_version
        legacy = version in LEGACY_VERSIONS
        out: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [i.to_dict() for i in self.interfaces]
        if self.ips:
            out["ips"] = [ip.to_dict(legacy) for ip in self.ips]
        if self.routes:
            out["routes"] = [r.to_dict() for r in self.routes]
        out["dns"] = dict(self.dns)
        return out

    def to_json(self, cni_version: str | None = None) -> str:
        return gojson.dumps(self.to_dict(cni_version), indent=4)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """Read a (prev)result of any supported version."""
        if not isinstance(data, dict):
            raise ValueError("result must be a JSON object")
        interfaces = [Interface(str(i.get("name", "")), str(i.get("mac", "") or ""),
                                str(i.get("sandbox", "") or ""))
                      for i in data.get("interfaces") or []]
        ips = [IPConfig(str(ip["address"]), ip.get("interface"), str(ip.get("gateway", "") or ""))
               for ip in data.get("ips") or []]
        routes = [RouteEntry(str(r["dst"]), str(r.get("gw", "") or "")) for r in data.get("routes") or []]
        return cls(str(data.get("cniVersion", "1.0.0")), interfaces, ips, routes,
                   dict(data.get("dns") or {}))

    def find_interface(self, name: str) -> tuple[int, Interface] | None:
        for index, iface in enumerate(self.interfaces):
            if iface.name == name:
                return index, iface
        return None

    def ips_of(self, index: int) -> list[IPConfig]:
        return [ip for ip in self.ips if ip.interface == index]


@dataclass(frozen=True)
class PodAllocation:
    """One IP ipamd gave the pod (AddNetworkReply.IPAllocationMetadata entry)."""

    address: str  # with prefix: /32 or /128
    route_table: int
    device_number: int = 0


def allocation_address(ipv4: str, ipv6: str) -> str | None:
    """The pod address of an allocation: IPv4/32 if set, else IPv6/128, else none."""
    if ipv4:
        return f"{ipv4}/32"
    if ipv6:
        return f"{ipv6}/128"
    return None


def add_result(namespace: str, pod_name: str, if_name: str, netns: str, veth_prefix: str,
               allocations: Sequence[PodAllocation], vlan_id: int = 0, subnet_gw: str = "",
               cni_version: str = "1.0.0") -> Result:
    """The ADD result: host/container interface pairs, then the dummy carrying vlan/device."""
    result = Result(cni_version)
    for index, alloc in enumerate(allocations):
        result.interfaces.append(Interface(names.host_veth_name(veth_prefix, namespace, pod_name, index)))
        result.interfaces.append(Interface(names.container_iface_name(if_name, index),
                                           mac=str(alloc.route_table), sandbox=netns))
        result.ips.append(IPConfig(alloc.address, len(result.interfaces) - 1,
                                   subnet_gw if vlan_id else ""))
    device = allocations[0].device_number if allocations else 0
    result.interfaces.append(Interface(names.dummy_iface_name(namespace, pod_name), mac=str(vlan_id),
                                       sandbox="" if vlan_id else str(device)))
    return result


@dataclass(frozen=True)
class TeardownHint:
    """What DEL can undo from prevResult alone: a branch-ENI pod (vlan) or a regular one (table)."""

    address: str
    vlan_id: int = 0
    route_table: int = names.MAIN_TABLE


def teardown_hint(prev: Result, namespace: str, pod_name: str, if_name: str) -> TeardownHint | None:
    """Read the overloaded fields back: dummy mac = vlan id; container mac = route table
    (older results: dummy sandbox = device number → its table). None when prevResult lacks them."""
    dummy = prev.find_interface(names.dummy_iface_name(namespace, pod_name))
    container = prev.find_interface(if_name)
    if dummy is None or container is None:
        return None
    ips = prev.ips_of(container[0])
    if len(ips) != 1:
        return None
    try:
        vlan_id = int(dummy[1].mac or "0")
    except ValueError:
        return None
    if vlan_id:
        return TeardownHint(ips[0].address, vlan_id=vlan_id)
    try:
        table = int(container[1].mac)
    except ValueError:
        try:
            table = names.route_table_id(int(dummy[1].sandbox or "0"))
        except ValueError:
            table = names.MAIN_TABLE
    return TeardownHint(ips[0].address, route_table=table)
