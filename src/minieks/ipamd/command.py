"""`minieks ipamd ...`: simulate one node's warm pool in virtual time (run arrives with the lab)."""

from __future__ import annotations

import argparse
import json
import logging

from minieks.aws import instance_types
from minieks.ipamd.config import ConfigError
from minieks.ipamd.simulate import simulate
from minieks.textout import columns
from minieks.usage import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    ipamd = sub.add_parser("ipamd", help="the VPC CNI's IP address manager")
    ipamd_sub = ipamd.add_subparsers(dest="ipamd_command", required=True, metavar="COMMAND")
    sim = ipamd_sub.add_parser("simulate", help="one node's warm pool in virtual time")
    sim.add_argument("--instance-type", required=True)
    sim.add_argument("--pods", type=int, required=True, help="pods added one at a time")
    sim.add_argument("--warm-eni-target", type=int)
    sim.add_argument("--warm-ip-target", type=int)
    sim.add_argument("--minimum-ip-target", type=int)
    sim.add_argument("--warm-prefix-target", type=int)
    sim.add_argument("--prefix-delegation", action="store_true")
    sim.add_argument("--max-pods", type=int, help="kubelet's max pods (default: the EKS AMI calculator's)")
    sim.add_argument("--format", choices=["table", "json"], default="table")
    sim.set_defaults(handler=simulate_command)

    run = ipamd_sub.add_parser("run", help="the ipamd daemon of one node, against an EC2 endpoint; "
                                           "configured by upstream's environment variables")
    run.add_argument("--endpoint-url", required=True, help="the EC2 endpoint (minieks ec2 serve)")
    run.add_argument("--instance-id", required=True)
    run.add_argument("--region", default="ap-northeast-2")
    run.add_argument("--socket", default="/var/run/aws-node/ipamd.sock", help="the plugin-facing gRPC socket")
    run.add_argument("--node-namespace", help="the node's network namespace (mek-...); none: no kernel changes")
    run.add_argument("--max-pods", type=int, help="kubelet's max pods (default: 110, as without an API server)")
    run.add_argument("--metrics-port", type=int, default=61678, help="Prometheus /metrics port (upstream: 61678)")
    run.add_argument("--kubeconfig", help="read max pods and ENIConfigs from this cluster's API (as aws-node)")
    run.add_argument("--node-name", help="this node's name in the cluster (MY_NODE_NAME)")
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> str:
    from minieks.ipamd.daemon import DaemonOptions, run_from_environment

    if args.node_namespace and not args.node_namespace.startswith("mek-"):
        raise UsageError("--node-namespace must be a lab namespace (mek-...)")
    options = DaemonOptions(endpoint_url=args.endpoint_url, instance_id=args.instance_id, region=args.region,
                            socket_path=args.socket, node_namespace=args.node_namespace)
    try:
        run_from_environment(options, args.max_pods, args.metrics_port, args.kubeconfig, args.node_name)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    return ""


def simulate_command(args: argparse.Namespace) -> str:
    if args.pods < 0:
        raise UsageError(f"--pods must not be negative, got {args.pods}")
    if args.max_pods is not None and args.max_pods < 1:
        raise UsageError(f"--max-pods must be at least 1, got {args.max_pods}")
    for name in ("warm_eni_target", "warm_ip_target", "minimum_ip_target", "warm_prefix_target"):
        if (getattr(args, name) or 0) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must not be negative")
    instance_types.get(args.instance_type)
    logging.getLogger("ipamd").setLevel(logging.CRITICAL)
    try:
        result = simulate(args.instance_type, args.pods, warm_eni_target=args.warm_eni_target,
                          warm_ip_target=args.warm_ip_target, minimum_ip_target=args.minimum_ip_target,
                          warm_prefix_target=args.warm_prefix_target, prefix_delegation=args.prefix_delegation,
                          max_pods=args.max_pods)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    if args.format == "json":
        return json.dumps(result.as_dict(), indent=2) + "\n"
    slot = "prefixes" if result.mode == "prefix-delegation" else "secondary IPs"
    rows = [list(row) for row in zip(result.eni_devices, result.eni_ids, result.per_eni)]
    out = (f"{result.instance_type} ({result.mode}), max pods {result.max_pods}: {result.pods} pods running"
           f"{f', {result.pods_failed} could not get an address' if result.pods_failed else ''}\n"
           f"ENIs {result.enis}, addresses {result.secondary_ips} ({result.prefixes} prefixes), "
           f"unused {result.unused_ips}\n\n")
    out += columns(["DEVICE", "ENI", slot.upper()], rows)
    out += "\nEC2 calls: " + ", ".join(f"{k} {v}" for k, v in result.ec2_calls.items()) + "\n"
    return out
