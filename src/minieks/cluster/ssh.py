"""`minieks ssh NODE [-- CMD]`: what `ssh ec2-user@node sudo CMD` gives on EKS, for a lab node.

The command runs in the node's network namespace and, so that `hostname` answers as on the node, in
a UTS namespace of its own named after the node. `hostnamectl` asks systemd on the host, which knows
nothing of the lab, so it is answered here from the node's own facts (its AL2023 identity).
With no command, an interactive shell opens there.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

from minieks.cluster import naming
from minieks.fabric.command import find_node, registry
from minieks.fabric import netns
from minieks.usage import UsageError


def hostnamectl(node: dict, instance_type: str | None) -> str:
    digest = hashlib.sha256(node["instance_id"].encode()).hexdigest()
    return (f" Static hostname: {node['name']}\n"
            f"       Icon name: computer-vm\n"
            f"         Chassis: vm 🖴\n"
            f"      Machine ID: {digest[:32]}\n"
            f"         Boot ID: {digest[32:64]}\n"
            f"  Virtualization: amazon\n"
            f"Operating System: {naming.OS_IMAGE}\n"
            f"     CPE OS Name: cpe:2.3:o:amazon:amazon_linux:2023\n"
            f"          Kernel: Linux {naming.KERNEL}\n"
            f"    Architecture: x86-64\n"
            f" Hardware Vendor: Amazon EC2\n"
            f"  Hardware Model: {instance_type or 'unknown'}\n"
            f"Firmware Version: 1.0\n")


def command_line(node: dict, argv: list[str]) -> list[str]:
    """ip netns exec <node> unshare --uts sh -c 'hostname <node name>; exec CMD'."""
    inner = argv or ["bash", "-l"]
    return ["ip", "netns", "exec", node["namespace"], "unshare", "--uts", "sh", "-c",
            'hostname "$0"; exec "$@"', node["name"], *inner]


def run(cluster: str, target: str, argv: list[str], capture: bool = False) -> subprocess.CompletedProcess | int:
    argv = argv[1:] if argv[:1] == ["--"] else argv
    reg = registry(cluster)
    node = find_node(reg, target)
    if not netns.exists(node["namespace"]):
        raise UsageError(f"node {target} is not running (its namespace {node['namespace']} is gone)")
    if argv[:1] == ["hostnamectl"] and argv[1:] in ([], ["status"]):
        text = hostnamectl(node, node.get("instance_type") or None)
        if capture:
            return subprocess.CompletedProcess(argv, 0, text, "")
        sys.stdout.write(text)
        return 0
    if capture:
        return subprocess.run(command_line(node, argv), capture_output=True, text=True, timeout=120)
    sys.stdout.flush()
    proc = subprocess.Popen(command_line(node, argv))
    while True:
        try:
            code = proc.wait()
            return 128 - code if code < 0 else code
        except KeyboardInterrupt:
            continue


def add_parser(sub) -> None:
    p = sub.add_parser("ssh", help="a shell or a command on a node, like ssh ec2-user@node sudo CMD")
    p.add_argument("--cluster", default="myeks")
    p.add_argument("node", metavar="NODE", help="node name, instance id or address")
    p.add_argument("argv", nargs="*", metavar="-- CMD", help="the command (none: an interactive shell)")
    p.set_defaults(handler=lambda a: sys.exit(run(a.cluster, a.node, a.argv)))


