"""`minieks ec2 ...`: run the EC2 emulator as a server that boto3 and the aws CLI can call."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from minieks.ec2.latency import PROFILES, Latency
from minieks.ec2.server import make_server
from minieks.ec2.throttle import DEFAULT_BUCKETS, BucketSpec
from minieks.ec2.service import REGION_ZONES, Ec2Service
from minieks.usage import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    ec2 = sub.add_parser("ec2", help="the EC2 emulator")
    ec2_sub = ec2.add_subparsers(dest="ec2_command", required=True, metavar="COMMAND")
    serve = ec2_sub.add_parser("serve", help="serve the EC2 Query API on 127.0.0.1")
    serve.add_argument("--port", type=int, default=5000, help="TCP port on 127.0.0.1 (0: any free port)")
    serve.add_argument("--state", metavar="FILE", help="SQLite file to persist to and resume from")
    serve.add_argument("--region", default="ap-northeast-2", choices=sorted(REGION_ZONES))
    serve.add_argument("--seed", default="0", help="seed for ids, MACs and address placement")
    serve.add_argument("--placement", choices=["random", "lowest"], default="random")
    serve.add_argument("--latency", choices=sorted(PROFILES), default="instant")
    serve.add_argument("--throttling", action="store_true", help="enforce EC2's request-rate buckets")
    serve.add_argument("--bucket", action="append", default=[], metavar="FAMILY=BURST/RATE",
                       help=f"change one throttling bucket ({', '.join(DEFAULT_BUCKETS)}), e.g. attach=10/1")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> str:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    buckets = parse_buckets(args.bucket)
    try:
        server = make_server(_NoService(), "127.0.0.1", args.port)
    except OSError as err:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {err.strerror}") from None
    service = Ec2Service(region=args.region, seed=args.seed, placement=args.placement,
                         latency=Latency(args.latency, seed=args.seed), throttling=args.throttling,
                         state_file=args.state, throttle_buckets=buckets)
    server.service = service
    server.codec.warm()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"EC2 endpoint {server.url} (region {args.region}; requests are not authenticated)", flush=True)
    try:
        stop.wait()
    finally:
        server.close()
        service.close()
    print("EC2 endpoint stopped", file=sys.stderr)
    return ""


def parse_buckets(values: list[str]) -> dict[str, BucketSpec]:
    """`attach=10/1` → {"attach": BucketSpec(10, 1)}, refusing unknown families and bad numbers."""
    out = {}
    for value in values:
        name, _, spec = value.partition("=")
        burst, _, rate = spec.partition("/")
        if name not in DEFAULT_BUCKETS:
            raise UsageError(f"unknown throttling bucket {name!r}; choose from {', '.join(DEFAULT_BUCKETS)}")
        try:
            out[name] = BucketSpec(float(burst), float(rate))
        except ValueError:
            raise UsageError(f"--bucket wants FAMILY=BURST/RATE, e.g. attach=10/1; got {value!r}") from None
        if out[name].capacity < 1 or out[name].refill_per_second <= 0:
            raise UsageError(f"--bucket {value!r}: the burst must be at least 1 and the rate above 0")
    return out


class _NoService:
    """Stands in while the port is bound, so a busy port fails before the state file is opened."""

    def call(self, action: str, params: dict) -> dict:
        raise RuntimeError("EC2 service not ready")
