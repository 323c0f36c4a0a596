"""The `minieks` command: parses arguments and hands each subcommand to its domain module.

Errors a user caused (unknown instance type, contradictory flags) print one clear line to
stderr and exit 2, like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence

from minieks import __version__
from minieks.aws import instance_types
from minieks.aws.max_pods import MaxPods, MaxPodsError, MaxPodsOptions, calculate
from minieks.cluster import command as cluster_command
from minieks.cluster import ssh as ssh_command
from minieks.ec2 import command as ec2_command
from minieks.explain import command as explain_command
from minieks.fabric import command as fabric_command
from minieks.ipamd import command as ipamd_command
from minieks.lab import command as lab_command
from minieks.textout import aws_table, columns
from minieks.usage import UsageError
from minieks.web import command as web_command

EXIT_USAGE = 2

# ---------------------------------------------------------------------------- instance-types

def _instance_record(t: instance_types.InstanceType) -> dict[str, object]:
    """The shape of the seed lab's `--query "InstanceTypes[].{Type:…, MaxENI:…, IPv4addr:…}"`."""
    return {"Type": t.name, "MaxENI": t.max_enis, "IPv4addr": t.ipv4_per_eni}


def cmd_instance_types(args: argparse.Namespace) -> str:
    found = instance_types.match(args.patterns)
    records = [_instance_record(t) for t in found]
    if args.format == "json":
        return json.dumps(records, indent=4) + "\n"
    if args.format == "csv":
        return _csv(["Type", "MaxENI", "IPv4addr"], [[r["Type"], r["MaxENI"], r["IPv4addr"]] for r in records])
    return aws_table("DescribeInstanceTypes", records)


# ---------------------------------------------------------------------------------- max-pods

def _max_pods_targets(args: argparse.Namespace) -> list[instance_types.InstanceType]:
    if args.all and args.types:
        raise UsageError("give instance types or --all, not both")
    if not args.all and not args.types:
        raise UsageError("name at least one instance type, or --all")
    if args.format == "eni-max-pods" and args.explain:
        raise UsageError("--explain cannot be used with --format eni-max-pods (a bare '<type> <max-pods>' list)")
    if args.format == "eni-max-pods" and (args.prefix_delegation or args.custom_networking or args.max_eni):
        raise UsageError(
            "--format eni-max-pods is upstream's published table: secondary-IP mode, no ceiling; "
            "it cannot be combined with --prefix-delegation, --custom-networking or --max-eni"
        )
    if args.all:
        return sorted(instance_types.catalog().values(), key=lambda t: t.name)
    return [instance_types.get(name) for name in args.types]


def cmd_max_pods(args: argparse.Namespace) -> str:
    targets = _max_pods_targets(args)
    opts = MaxPodsOptions(
        prefix_delegation=args.prefix_delegation,
        custom_networking=args.custom_networking,
        max_eni=args.max_eni,
        show_max_allowed=args.show_max_allowed or args.format == "eni-max-pods",
    )
    results: list[MaxPods] = []
    skipped: list[str] = []
    for t in targets:
        try:
            results.append(calculate(t, opts))
        except MaxPodsError as err:
            if not args.all:
                raise UsageError(str(err)) from None
            skipped.append(t.name)
    if skipped:
        print(f"minieks max-pods: {len(skipped)} types skipped (not possible with these options), "
              f"e.g. {', '.join(skipped[:3])}", file=sys.stderr)
    if args.format == "eni-max-pods":
        return "".join(f"{r.instance_type} {r.max_pods}\n" for r in results)
    if args.format == "json":
        payload = [r.as_dict() if args.explain else {k: v for k, v in r.as_dict().items() if k != "explanation"}
                   for r in results]
        return json.dumps(payload, indent=2) + "\n"
    out = columns(
        ["TYPE", "MODE", "ENIS", "IPV4/ENI", "FORMULA", "CEILING", "MAX PODS", "WORKLOADS"],
        [[r.instance_type, r.mode, r.enis, r.ipv4_per_eni, r.formula,
          "unknown" if r.ceiling_unknown else (r.ceiling or "-"), r.max_pods, r.workloads] for r in results],
    )
    if args.explain:
        for r in results:
            out += f"\n{r.instance_type}:\n" + "".join(f"  {line}\n" for line in r.lines)
    return out


# ---------------------------------------------------------------------------------- plumbing

def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minieks", description="EKS pod networking (AWS VPC CNI) on one machine.")
    parser.add_argument("--version", action="version", version=f"minieks {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("instance-types", help="ENI and address limits of EC2 instance types")
    p.add_argument("patterns", nargs="+", metavar="PATTERN", help="instance type or glob, e.g. 't3.*'")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.set_defaults(handler=cmd_instance_types)

    p = sub.add_parser("max-pods", help="max pods per node, explained")
    p.add_argument("types", nargs="*", metavar="TYPE")
    p.add_argument("--all", action="store_true", help="every known instance type")
    p.add_argument("--prefix-delegation", action="store_true", help="ENABLE_PREFIX_DELEGATION=true (/28 per slot)")
    p.add_argument("--custom-networking", action="store_true", help="AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true")
    p.add_argument("--max-eni", type=int, metavar="N", help="MAX_ENI: cap on ENIs ipamd attaches")
    p.add_argument("--show-max-allowed", action="store_true", help="do not apply the EKS AMI 110/250 ceiling")
    p.add_argument("--explain", action="store_true", help="every term in words and numbers")
    p.add_argument("--format", choices=["table", "json", "eni-max-pods"], default="table")
    p.set_defaults(handler=cmd_max_pods)

    cluster_command.add_parser(sub)
    ssh_command.add_parser(sub)
    ec2_command.add_parser(sub)
    fabric_command.add_parser(sub)
    ipamd_command.add_parser(sub)
    explain_command.add_parser(sub)
    web_command.add_parser(sub)
    lab_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], str] = args.handler
    try:
        sys.stdout.write(handler(args))
    except (UsageError, MaxPodsError, instance_types.UnknownInstanceType) as err:
        print(f"minieks {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
