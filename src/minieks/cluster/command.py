"""The cluster commands: up, down, status, kubeconfig."""

from __future__ import annotations

import argparse

from minieks.cluster import supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="create (or resume) the cluster; the seed lab's by default")
    p.add_argument("-f", "--file", help="cluster YAML (name, subnets, node groups, CNI env, EC2 profile)")
    p.add_argument("--cluster", help="cluster name (default: myeks, or the file's)")
    p.add_argument("--foreground", action="store_true", help="run the supervisor in this terminal")
    p.set_defaults(handler=lambda a: supervisor.up(supervisor.resolve_spec(a.file, a.cluster), a.foreground))

    p = sub.add_parser("down", help="delete the cluster: every namespace, process and file")
    p.add_argument("--cluster", default="myeks")
    p.set_defaults(handler=lambda a: supervisor.down(a.cluster))

    p = sub.add_parser("status", help="is the cluster running, and where")
    p.add_argument("--cluster", default="myeks")
    p.set_defaults(handler=lambda a: supervisor.status(a.cluster))

    p = sub.add_parser("kubeconfig", help="the cluster's kubeconfig path (or --print its content)")
    p.add_argument("--cluster", default="myeks")
    p.add_argument("--print", action="store_true", dest="print_content")
    p.set_defaults(handler=lambda a: supervisor.kubeconfig(a.cluster, a.print_content))
