"""`minieks explain pod NAME [-n NAMESPACE] [--cluster NAME] [-o text|json]`."""

from __future__ import annotations

import argparse
import sys

from minieks.explain.kubeapi import KubeApiError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="why a pod is not Running, from the API, ipamd and EC2")
    kinds = p.add_subparsers(dest="explain_kind", required=True, metavar="KIND")
    pod = kinds.add_parser("pod", help="explain one pod")
    pod.add_argument("name", metavar="NAME")
    pod.add_argument("-n", "--namespace", default="default")
    pod.add_argument("--cluster", default="myeks")
    pod.add_argument("-o", "--output", choices=["text", "json"], default="text")
    pod.set_defaults(handler=explain_pod)


def explain_pod(args: argparse.Namespace) -> str:
    """The diagnosis as text (or JSON); an unknown pod is kubectl's NotFound line and exit 1."""
    from minieks.explain.gather import explain

    try:
        diagnosis = explain(args.cluster, args.namespace, args.name)
    except KubeApiError as err:
        print(err.kubectl_text(), file=sys.stderr)
        raise SystemExit(1) from None
    return diagnosis.to_json() if args.output == "json" else diagnosis.render()
