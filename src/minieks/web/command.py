"""`minieks board`: where the cluster board of a running cluster is (the supervisor records its URL
in endpoints.json), checked by asking it, so a stale address is never printed as if it worked."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request

from minieks.cluster.supervisor import endpoints
from minieks.usage import UsageError


def board_address(cluster: str) -> str:
    url = endpoints(cluster).get("board_url")
    if not url:
        raise UsageError(f"cluster {cluster} has no board (started by an older minieks? run 'minieks up' again)")
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=3) as response:
            response.read()
    except (urllib.error.URLError, OSError):
        raise UsageError(f"the board of cluster {cluster} ({url}) does not answer: is the cluster running? "
                         f"('minieks status --cluster {cluster}')") from None
    return f"{url}\n"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("board", help="the cluster board's address (nodes, ENIs, address slots, pods)")
    p.add_argument("--cluster", default="myeks")
    p.set_defaults(handler=lambda a: board_address(a.cluster))
