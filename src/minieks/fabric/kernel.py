"""Small, forgiving kernel operations inside one lab namespace, shared by the VPC and the nodes.

The fabric follows EC2 level-triggered: the same change may be applied twice (an event and a
reconcile, or a restart after a crash), so "already there" and "already gone" are successes here.
Everything goes through minieks.fabric.netns, which only ever acts inside `mek-` namespaces.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
from collections.abc import Iterator, Mapping

from minieks.fabric import netns

NUD_PERMANENT = 0x80
SCOPE_LINK = 253
PROTO_BOOT = 3            # what vishvananda/netlink sends: `ip route` prints no proto, as on EKS
GONE = (errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL)


@contextlib.contextmanager
def tolerate(*codes: int) -> Iterator[None]:
    """Swallow the netlink errors named (e.g. EEXIST when adding what is already there)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        yield
    except NetlinkError as err:
        if err.code not in codes:
            raise


def sysctls(namespace: str, values: Mapping[str, object]) -> None:
    """Write several network sysctls of one namespace in a single visit (keys with dots)."""
    for key in values:
        if not key.startswith("net."):
            raise netns.NetnsError(f"only network sysctls belong to a namespace, not {key!r}")
    with netns.entered(namespace):
        for key, value in values.items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as handle:
                handle.write(str(value))


def base_sysctls(forward: bool) -> dict[str, object]:
    """What every lab namespace sets explicitly: IPv4 devconf is copied from the root namespace
    when a namespace is made (report pitfall 1), and IPv6 only adds RS/MLD/DAD noise."""
    return {"net.ipv4.ip_forward": int(forward),
            "net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}


def link_index(ipr, ifname: str) -> int | None:
    """The index of a link by name (a `get`, not the O(links) lookup), None when absent."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return ipr.link("get", ifname=ifname)[0]["index"]
    except NetlinkError as err:
        if err.code == errno.ENODEV:
            return None
        raise


def delete_link(ipr, ifname: str) -> bool:
    """Delete a link if present (its veth peer goes with it); True when one was deleted."""
    index = link_index(ipr, ifname)
    if index is None:
        return False
    with tolerate(*GONE):
        ipr.link("del", index=index)
    return True


def add_address(ipr, index: int, address: str, prefixlen: int) -> None:
    """Add an address (with its broadcast, as `ip addr` shows on EC2) unless already there."""
    extra = {}
    if prefixlen < 31:
        extra["broadcast"] = str(ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False).broadcast_address)
    with tolerate(errno.EEXIST):
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen, **extra)


def iptables_restore(namespace: str, rules: str) -> None:
    """Replace the tables named in `rules` atomically (the lab owns every table of the namespace)."""
    netns.run(namespace, ["iptables-restore"], input=rules)
