"""resolv.conf for lab namespaces, where `ip netns exec` looks for it.

`ip netns exec NAME cmd` bind-mounts every file of /etc/netns/NAME over /etc, so a node's (or a
pod's) resolver is set by writing /etc/netns/<namespace>/resolv.conf. The directory carries the
namespace's `mek-` name, so cleanup finds it by prefix like the namespace itself.
"""

from __future__ import annotations

import os
import shutil

from minieks.fabric import netns

ETC_NETNS = "/etc/netns"


def directory(ns_name: str) -> str:
    return os.path.join(ETC_NETNS, netns.check_name(ns_name))


def write_resolv_conf(ns_name: str, resolver_ip: str, search: tuple[str, ...] = ()) -> str:
    """Point the namespace at `resolver_ip` (the VPC's +2, as EC2's DHCP options do); returns the path."""
    folder = directory(ns_name)
    os.makedirs(folder, exist_ok=True)
    lines = ["# minieks: the VPC resolver (the VPC range's base + 2), as EC2's DHCP options set it"]
    if search:
        lines.append("search " + " ".join(search))
    lines.append(f"nameserver {resolver_ip}")
    target = os.path.join(folder, "resolv.conf")
    temporary = target + ".mek-tmp"
    with open(temporary, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(temporary, target)
    return target


def remove_resolv_conf(ns_name: str) -> None:
    """Drop the namespace's /etc/netns directory (nothing else of ours lives there)."""
    shutil.rmtree(directory(ns_name), ignore_errors=True)


def remove_all(prefix: str) -> list[str]:
    """Every /etc/netns/<prefix>* directory, e.g. a whole lab's after a crash; idempotent."""
    if not prefix.startswith(netns.PREFIX) or len(prefix) <= len(netns.PREFIX):
        raise netns.NetnsError(f"resolv cleanup needs a lab prefix such as mek-<lab>-, got {prefix!r}")
    try:
        names = os.listdir(ETC_NETNS)
    except FileNotFoundError:
        return []
    removed = []
    for name in sorted(names):
        if name.startswith(prefix):
            shutil.rmtree(os.path.join(ETC_NETNS, name), ignore_errors=True)
            removed.append(name)
    try:
        os.rmdir(ETC_NETNS)         # only when empty: it did not exist before the lab
    except OSError:
        pass
    return removed
