"""`minieks lab [--step N] [--pause] [--keep] [--report FILE]`: the seed lab, live, end to end."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minieks.cluster import supervisor
from minieks.lab.report import write
from minieks.lab.seed import STEPS, Lab
from minieks.lab.session import Session
from minieks.usage import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lab", help="run the seed lab (EKS pod networking, week 2) on the default cluster")
    p.add_argument("--cluster", default="myeks")
    p.add_argument("--step", type=int, help="run steps up to N only (1-10)")
    p.add_argument("--pause", action="store_true", help="wait for Enter between steps")
    p.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    p.add_argument("--report", metavar="FILE", help="write the run as Markdown (or HTML for .html)")
    p.set_defaults(handler=lab_command)


def lab_command(args: argparse.Namespace) -> str:
    if args.step is not None and not 1 <= args.step <= len(STEPS):
        raise UsageError(f"--step must be between 1 and {len(STEPS)}")
    started = time.time()
    already = supervisor.running_pid(args.cluster) is not None
    if not already:
        print(f"$ minieks up   (cluster {args.cluster})", flush=True)
        spec = supervisor.resolve_spec(None, args.cluster)
        supervisor.up(spec, foreground=False)
    endpoints = dict(supervisor.endpoints(args.cluster))
    session = Session(args.cluster, endpoints)
    if args.report:
        session.picture_dir = Path(args.report).resolve().parent
    session.say(f"export KUBECONFIG={endpoints['kubeconfig']}")
    session.say(f"export AWS_ENDPOINT_URL_EC2={endpoints['ec2_url']}")
    lab = Lab(session)
    lab.refresh_nodes()
    last = args.step or len(STEPS)
    try:
        for number, step in enumerate(STEPS[:last], start=1):
            if args.pause and number > 1 and sys.stdin.isatty():
                input("(Enter for the next step) ")
            session.begin(number, step.title, step.summary)
            t = time.time()
            step.run(lab)
            session.end(time.time() - t)
    finally:
        total = time.time() - started
        if args.report:
            write(Path(args.report), session.records, "minieks: the seed lab, EKS pod networking", total)
            session.say(f"report written to {args.report}")
        session.say(f"lab finished in {total:.1f}s")
        if not args.keep and not already:
            session.say(f"$ minieks down --cluster {args.cluster}")
            session.say(supervisor.down(args.cluster).rstrip())
    return ""
