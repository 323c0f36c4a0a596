"""The cluster commands: up, down, status, kubeconfig."""

from __future__ import annotations

import argparse

from minieks.cluster import supervisor


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_nodegroup_parser(sub)
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


def add_nodegroup_parser(sub: argparse._SubParsersAction) -> None:
    ng = sub.add_parser("nodegroup", help="node groups, as eksctl manages them")
    ng_sub = ng.add_subparsers(dest="nodegroup_command", required=True, metavar="COMMAND")
    p = ng_sub.add_parser("list", help="the cluster's node groups and their nodes")
    p.add_argument("--cluster", default="myeks")
    p.set_defaults(handler=lambda a: supervisor.nodegroups(a.cluster))
    p = ng_sub.add_parser("create", help="launch a node group (after `kubectl set env ds aws-node ...`, "
                                         "new nodes get the new CNI settings and max pods)")
    p.add_argument("--cluster", default="myeks")
    p.add_argument("--name", required=True)
    p.add_argument("--instance-type", default="t3.medium")
    p.add_argument("--nodes", type=int, default=3)
    p.set_defaults(handler=lambda a: supervisor.create_nodegroup(a.cluster, a.name, a.instance_type, a.nodes))
    p = ng_sub.add_parser("delete", help="cordon, drain and terminate a node group")
    p.add_argument("--cluster", default="myeks")
    p.add_argument("--name", required=True)
    p.set_defaults(handler=lambda a: supervisor.delete_nodegroup(a.cluster, a.name))
