"""`minieks node exec`, `minieks pod exec`, `minieks cleanup`: reach into a running lab, or remove
what a crashed one left.

Exec finds the namespace by the names the lab's registry (`lab.json`, fabric/lab.py) keeps, then
runs `ip netns exec <namespace> CMD...` with this process's stdin, stdout and stderr, so the user
gets exactly what typing that by hand gives, and exits with the command's code. Cleanup is
fabric/lab.py's `cleanup`: it needs no registry (the `mek-<lab>-` prefix and the pid files are
the record), so it works after `kill -9`, and it says what it removed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from minieks.fabric import netns, processes
from minieks.fabric.lab import LabError, cleanup, load_registry, state_dir
from minieks.fabric.names import BadName, LabNames
from minieks.usage import UsageError

DEFAULT_LAB = "myeks"


def _exec_parser(sub: argparse._SubParsersAction, noun: str, metavar: str, target_help: str, handler) -> None:
    """`minieks <noun> exec [--lab L] TARGET -- CMD ...`: a command in the noun's network namespace."""
    group = sub.add_parser(noun, help=f"the lab's {noun}s")
    group_sub = group.add_subparsers(dest=f"{noun}_command", required=True, metavar="COMMAND")
    p = group_sub.add_parser("exec", help=f"run a command in a {noun}'s network namespace")
    p.add_argument("--lab", default=DEFAULT_LAB, help=f"the lab (default {DEFAULT_LAB})")
    p.add_argument("target", metavar=metavar, help=target_help)
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(handler=handler)


def add_parser(sub: argparse._SubParsersAction) -> None:
    _exec_parser(sub, "node", "NODE", "instance id, node name, namespace (or n<i>), or primary IP", node_exec_command)
    _exec_parser(sub, "pod", "NAMESPACE/POD", "the pod (a bare POD means default/POD)", pod_exec_command)

    p = sub.add_parser("cleanup", help="remove a lab's namespaces, processes and files (also after a crash)")
    p.add_argument("--lab", default=DEFAULT_LAB, help=f"the lab (default {DEFAULT_LAB})")
    p.set_defaults(handler=cleanup_command)


# ------------------------------------------------------------------------------------- lookups
def lab_name(lab: str) -> str:
    try:
        return LabNames.of(lab).lab
    except BadName as err:
        raise UsageError(str(err)) from None


def registry(lab: str) -> dict:
    try:
        return load_registry(lab_name(lab))
    except LabError as err:
        raise UsageError(str(err)) from None


def find_node(reg: dict, key: str) -> dict:
    """A node by any name a user is likely to have at hand."""
    prefix = LabNames.of(reg["lab"]).prefix
    for node in reg.get("nodes", {}).values():
        names = {node["instance_id"], node["name"], node["namespace"], node["primary_ip"],
                 node["namespace"].removeprefix(prefix)}
        if key in names:
            return node
    known = ", ".join(f"{n['instance_id']} ({n['namespace']}, {n['primary_ip']})"
                      for n in reg.get("nodes", {}).values()) or "none"
    raise UsageError(f"lab {reg['lab']!r} has no node {key!r}; its nodes: {known}")


def find_pod(reg: dict, key: str) -> dict:
    full = key if "/" in key else f"default/{key}"
    pods = reg.get("pods", {})
    if full in pods:
        return pods[full]
    known = ", ".join(sorted(pods)[:10]) + (", ..." if len(pods) > 10 else "") if pods else "none"
    raise UsageError(f"lab {reg['lab']!r} has no pod {full!r}; its pods: {known}")


# ------------------------------------------------------------------------------------ commands
def node_exec_command(args: argparse.Namespace) -> str:
    reg = registry(args.lab)
    raise SystemExit(exec_in(find_node(reg, args.target)["namespace"], args.argv, reg["lab"]))


def pod_exec_command(args: argparse.Namespace) -> str:
    reg = registry(args.lab)
    raise SystemExit(exec_in(find_pod(reg, args.target)["netns"], args.argv, reg["lab"]))


def exec_in(namespace: str, argv: list[str], lab: str) -> int:
    """`ip netns exec` with our standard streams; the command's exit code (128+N if killed by N)."""
    argv = argv[1:] if argv[:1] == ["--"] else argv
    if not argv:
        raise UsageError("give the command after --, e.g. -- ip -br addr")
    if not netns.exists(namespace):
        raise UsageError(f"namespace {namespace} is gone (lab {lab!r} not running? "
                         f"`minieks cleanup --lab {lab}` removes what is left)")
    sys.stdout.flush()
    proc = subprocess.Popen(["ip", "netns", "exec", namespace, *argv])
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:       # the command got the same Ctrl-C: let it decide
            continue
    return 128 - code if code < 0 else code


def cleanup_command(args: argparse.Namespace) -> str:
    lab = lab_name(args.lab)
    state = state_dir(lab)
    running = processes.running(state / "pids")
    had_state = state.exists()
    try:
        removed = cleanup(lab)
    except netns.NetnsError as err:
        raise UsageError(f"{err} (cleanup needs root)") from None
    lines = [f"stopped {name} (pid {pid})" for name, pid in running]
    lines += [f"removed namespace {name}" for name in removed]
    if had_state:
        lines.append(f"removed {state}")
    return "".join(line + "\n" for line in lines) or f"lab {lab!r}: nothing to remove\n"

