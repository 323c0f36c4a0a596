"""The few netlink operations host and pod set-up need, on a pyroute2 IPRoute, with the kernel's
answers turned into the shapes rules.py speaks (IpRule) and the error words Go prints.

Upstream programs the kernel through vishvananda/netlink; these helpers send the same requests
(routes with proto boot, so `ip route` prints no proto; rules matched field by field) and keep
"already there" / "already gone" answers harmless where upstream ignores them. Callers own the
IPRoute, so it can be bound to any lab namespace (fabric.netns.iproute, or the plugin's own).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from pyroute2 import NetlinkError

from minieks.netsetup.rules import IpRule, Route

PROTO_KERNEL = 2
PROTO_BOOT = 3           # what vishvananda/netlink sends: `ip route` prints no proto
SCOPE_UNIVERSE = 0
SCOPE_LINK = 253
NUD_PERMANENT = 0x80
GONE = (errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL)


def go_error(err: BaseException) -> str:
    """An errno as Go's syscall.Errno prints it ("file exists"); other errors as they are."""
    if isinstance(err, (NetlinkError, OSError)) and isinstance(err.args[0] if err.args else None, int):
        text = os.strerror(err.args[0])
        return text[:1].lower() + text[1:]
    return str(err)


@contextlib.contextmanager
def ignoring(*codes: int) -> Iterator[None]:
    """Swallow netlink errors with these errnos (EEXIST on add, ENOENT/ESRCH on delete)."""
    try:
        yield
    except NetlinkError as err:
        if err.code not in codes:
            raise


# --------------------------------------------------------------------------------------- links
def link_name(msg: Any) -> str:
    return msg.get_attr("IFLA_IFNAME") or ""


def link_mac(msg: Any) -> str:
    return (msg.get_attr("IFLA_ADDRESS") or "").lower()


def link_by_name(ipr: Any, name: str) -> Any | None:
    """One RTM_GETLINK by name (never a dump: pitfall 12)."""
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as err:
        if err.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise


_NLMSG = struct.Struct("=IHHII")          # nlmsghdr: len, type, flags, seq, pid
_RTA = struct.Struct("=HH")               # rtattr: len, type
_IFINFO_SIZE = 16                         # ifinfomsg
RTM_NEWLINK, RTM_GETLINK, NLMSG_ERROR, NLMSG_DONE = 16, 18, 2, 3
IFLA_ADDRESS, IFLA_IFNAME = 1, 3


def link_macs(namespace: str | None = None) -> dict[str, str]:
    """Name → MAC of every link in the lab namespace (default: the calling thread's), from one
    RTM_GETLINK dump read for just those two attributes. pyroute2 decodes every attribute of every
    link (~60 ms with 100 pod veths on a node); names and MACs are all a dump is needed for here."""
    if namespace is not None:
        from minieks.fabric import netns

        with netns.entered(namespace):
            return link_macs()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        request = _NLMSG.pack(_NLMSG.size + _IFINFO_SIZE, RTM_GETLINK, 0x1 | 0x300, 1, 0) + bytes(_IFINFO_SIZE)
        sock.send(request)
        macs: dict[str, str] = {}
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind = _NLMSG.unpack_from(data, offset)[:2]
                if kind == NLMSG_DONE:
                    return macs
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + _NLMSG.size)[0]
                    raise OSError(code, os.strerror(code))
                if kind == RTM_NEWLINK:
                    name, mac = _name_and_mac(data, offset + _NLMSG.size + _IFINFO_SIZE, offset + length)
                    macs[name] = mac
                offset += (length + 3) & ~3
                if length == 0:
                    break
    finally:
        sock.close()


def _name_and_mac(data: bytes, start: int, end: int) -> tuple[str, str]:
    name, mac = "", ""
    while start + _RTA.size <= end:
        length, kind = _RTA.unpack_from(data, start)
        if length < _RTA.size:
            break
        value = data[start + _RTA.size:start + length]
        if kind & 0x3FFF == IFLA_IFNAME:
            name = value.rstrip(b"\0").decode()
        elif kind & 0x3FFF == IFLA_ADDRESS:
            mac = value.hex(":")
        start += (length + 3) & ~3
    return name, mac


def delete_link(ipr: Any, name: str) -> bool:
    """Delete a link by name; False when there was none."""
    msg = link_by_name(ipr, name)
    if msg is None:
        return False
    with ignoring(*GONE):
        ipr.link("del", index=msg["index"])
    return True


# --------------------------------------------------------------------------------------- rules
def _split(prefix: str) -> tuple[str, int, int]:
    net = ipaddress.ip_network(prefix, strict=False)
    return str(net.network_address), net.prefixlen, (2 if net.version == 4 else 10)


def rule_request(rule: IpRule) -> dict[str, Any]:
    """pyroute2 keyword arguments for adding or deleting `rule` (table 0 = any table)."""
    args: dict[str, Any] = {"priority": rule.priority, "table": rule.table,
                            "family": 2 if rule.family == 4 else 10}
    if rule.src:
        args["src"], args["src_len"], args["family"] = _split(rule.src)
    if rule.dst:
        args["dst"], args["dst_len"], args["family"] = _split(rule.dst)
    if rule.mark is not None:
        args["fwmark"] = rule.mark
        args["fwmask"] = rule.mask if rule.mask is not None else 0xFFFFFFFF
    if rule.iif:
        args["iifname"] = rule.iif
    return args


def rule_from_msg(msg: Any) -> IpRule:
    """A dumped RTM_NEWRULE as an IpRule (FRA_TABLE wins over the 8-bit header table)."""
    family = 4 if msg["family"] == 2 else 6
    src = msg.get_attr("FRA_SRC")
    dst = msg.get_attr("FRA_DST")
    mark = msg.get_attr("FRA_FWMARK")
    mask = msg.get_attr("FRA_FWMASK")
    return IpRule(priority=msg.get_attr("FRA_PRIORITY") or 0,
                  table=msg.get_attr("FRA_TABLE") or msg["table"],
                  src=f"{src}/{msg['src_len']}" if src else None,
                  dst=f"{dst}/{msg['dst_len']}" if dst else None,
                  mark=mark if mark else None, mask=mask if mark else None,
                  iif=msg.get_attr("FRA_IIFNAME"), family=family)


def list_rules(ipr: Any, family: int = 4) -> list[IpRule]:
    return [rule_from_msg(m) for m in ipr.rule("dump", family=2 if family == 4 else 10)]


def add_rule(ipr: Any, rule: IpRule) -> None:
    """RuleAdd; an identical rule already there is fine (upstream ignores EEXIST)."""
    with ignoring(errno.EEXIST):
        ipr.rule("add", **rule_request(rule))


def delete_rule(ipr: Any, rule: IpRule, *, all_matches: bool = False) -> int:
    """RuleDel, ENOENT ignored; with `all_matches`, repeat until the kernel has none left."""
    deleted = 0
    while True:
        try:
            ipr.rule("del", **rule_request(rule))
        except NetlinkError as err:
            if err.code in (errno.ENOENT, errno.ESRCH):
                return deleted
            raise
        deleted += 1
        if not all_matches:
            return deleted


# -------------------------------------------------------------------------------------- routes
def route_request(route: Route, oif: int) -> dict[str, Any]:
    """pyroute2 keyword arguments for `route` through link `oif` (proto boot unless given)."""
    dst = "0.0.0.0/0" if route.dst == "default" else route.dst
    args: dict[str, Any] = {"dst": dst, "oif": oif, "table": route.table,
                            "proto": PROTO_KERNEL if route.proto == "kernel" else PROTO_BOOT,
                            "scope": SCOPE_LINK if route.scope == "link" else SCOPE_UNIVERSE}
    if route.via:
        args["gateway"] = route.via
    if route.src:
        args["prefsrc"] = route.src
    return args


def replace_route(ipr: Any, route: Route, oif: int) -> None:
    ipr.route("replace", **route_request(route, oif))


def delete_route(ipr: Any, route: Route, oif: int | None = None) -> bool:
    """RouteDel; False when no such route. Proto is matched only when the route names one."""
    args = route_request(route, oif or 0)
    if oif is None:
        del args["oif"]
    if route.proto is None:
        del args["proto"]
    try:
        ipr.route("del", **args)
    except NetlinkError as err:
        if err.code in (errno.ESRCH, errno.ENOENT):
            return False
        raise
    return True
