"""Causes EC2 names in its answers to ipamd: the subnet has no address (or no aligned /28) left,
or the account's request rate is throttled. Evidence: ipamd's log lines with the error codes,
awscni_aws_api_error_count{api,error}, and DescribeSubnets' AvailableIpAddressCount."""

from __future__ import annotations

import ipaddress

from minieks.explain.diagnosis import Cause
from minieks.explain.evidence import (
    INSUFFICIENT_CIDR_WAIT, SUBNET_FULL_LINE, THROTTLE_CODES, clock, duration)
from minieks.explain.situation import Situation

INSUFFICIENT_CIDR_COOLDOWN = 120.0
NO_ADDRESSES = "InsufficientFreeAddressesInSubnet"
NO_BLOCKS = "InsufficientCidrBlocks"
AWS_RESERVED = 5                  # network, router, DNS, future use, broadcast
SUCCESS_LINES = ("Created a new ENI", "Successfully freed ENI")


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{api} ×{n}" for api, n in sorted(counts.items()))


def _subnet_line(s: Situation) -> tuple[str | None, dict]:
    subnet = s.facts.ec2.subnet if s.facts.ec2 else None
    if not subnet:
        return None, {}
    cidr = subnet.get("CidrBlock", "")
    available = subnet.get("AvailableIpAddressCount")
    try:
        usable = ipaddress.ip_network(cidr).num_addresses - AWS_RESERVED
    except ValueError:
        usable = None
    of = f" of {usable} usable" if usable is not None else ""
    line = (f"subnet {subnet.get('SubnetId')} ({cidr}, {subnet.get('AvailabilityZone', '?')}): "
            f"AvailableIpAddressCount {available}{of}")
    return line, {"subnet": subnet.get("SubnetId"), "cidr": cidr, "available": available, "usable": usable}


def _wait_line(s: Situation, times: list[float]) -> tuple[str | None, float | None]:
    """ipamd's 2-minute pause after an InsufficientCidr error (increaseDatastorePool)."""
    if not times:
        return None, None
    until = max(times) + INSUFFICIENT_CIDR_COOLDOWN
    if until <= s.facts.now:
        return None, until
    waiting = s.log_matching(INSUFFICIENT_CIDR_WAIT)
    quoted = f' ("{INSUFFICIENT_CIDR_WAIT} hence will wait for 2m0s before retrying")' if waiting else ""
    return (f"ipamd asks EC2 for nothing more until {clock(until)} (in {duration(until - s.facts.now)}): "
            f"it waits 2m0s after an InsufficientCidr error{quoted}"), until


def subnet_exhausted(s: Situation) -> Cause | None:
    codes = (NO_ADDRESSES,) if s.pd else (NO_ADDRESSES, NO_BLOCKS)
    errors = s.errors_with(codes)
    full_lines = s.log_matching(SUBNET_FULL_LINE)
    line, subnet = _subnet_line(s)
    dry = subnet.get("available") == 0
    if s.pd and not errors and not dry:
        return None                     # under PD the subnet-full line may be InsufficientCidrBlocks
    if not (errors or full_lines or dry):
        return None
    counts = s.counted_errors(codes)
    evidence = []
    if errors or counts:
        last = max((e.time for e in errors if e.time), default=None)
        apis = _counts_text(counts) or ", ".join(sorted({e.api for e in errors if e.api}))
        evidence.append(f"EC2 answered {NO_ADDRESSES} to ipamd: {apis or 'see the log'}"
                        f"{f'; last at {clock(last)}' if last else ''} (awscni_aws_api_error_count)")
    if full_lines:
        evidence.append(f'ipamd ({clock(full_lines[-1].time)}): "{full_lines[-1].message}"')
    if line:
        evidence.append(line)
    slots = s.slots_per_eni
    available = subnet.get("available")
    if slots and isinstance(available, int) and 0 < available < slots + 1:
        evidence.append(f"a new ENI needs {slots + 1} addresses (its primary + {slots} secondary); "
                        f"the subnet has {available}")
    wait, until = _wait_line(s, [r.time for r in full_lines if r.time] + [e.time for e in errors if e.time])
    if wait:
        evidence.append(wait)
    evidence.append(s.pool_line())
    remedy = ["more addresses for pods: add a secondary CIDR to the VPC with subnets tagged kubernetes.io/role/cni=1 "
              "(subnet discovery) or use custom networking (ENIConfig)",
              "find who holds the subnet's addresses: leaked 'available' ENIs (description aws-K8S-*), and warm "
              "pools — WARM_ENI_TARGET=1 keeps a whole spare ENI per node; WARM_IP_TARGET/MINIMUM_IP_TARGET "
              "keep fewer",
              "carve a reserved range with create-subnet-cidr-reservation"]
    last = max([r.time for r in full_lines if r.time] + [e.time for e in errors if e.time], default=None)
    return Cause("subnet-exhausted", f"subnet exhausted: EC2 has no free address for the node in "
                                     f"{subnet.get('subnet') or 'its subnet'}"
                                     f"{f' ({available} available)' if available is not None else ''}",
                 evidence, remedy, dict(subnet, errors=counts, retry_after=until, last=last))


def _blocks_note(subnet: dict) -> str:
    """Why no /28 is whole: AWS's own addresses sit in the first and last block, ours in the rest."""
    try:
        blocks = ipaddress.ip_network(subnet.get("cidr", "")).num_addresses // 16
    except ValueError:
        return "used addresses are scattered through the range (fragmentation)"
    usable = max(blocks - 2, 0)
    return (f"{subnet['cidr']} has {blocks} aligned /28 block{'s' if blocks != 1 else ''}, the first and the last "
            f"hold addresses AWS keeps (the first four, the last), so at most {usable} can ever be a prefix"
            + ("" if usable == 0 else "; ENI primaries and secondary IPs scattered through the others use them up "
                                      "(fragmentation)"))


def no_free_prefix(s: Situation) -> Cause | None:
    errors = s.errors_with((NO_BLOCKS,))
    if not s.pd or not errors:
        return None
    counts = s.counted_errors((NO_BLOCKS,))
    line, subnet = _subnet_line(s)
    last = max((e.time for e in errors if e.time), default=None)
    available = subnet.get("available")
    evidence = [f"EC2 answered {NO_BLOCKS} to ipamd: {_counts_text(counts) or 'see the log'}"
                f"{f'; last at {clock(last)}' if last else ''}"]
    if line:
        evidence.append(line)
    if isinstance(available, int) and available >= 16:
        evidence.append(f"{available} addresses are free but no whole, aligned /28 is: {_blocks_note(subnet)}")
    full_lines = s.log_matching(SUBNET_FULL_LINE)
    if full_lines:
        evidence.append(f'ipamd ({clock(full_lines[-1].time)}): "{full_lines[-1].message}"')
    wait, until = _wait_line(s, [r.time for r in full_lines if r.time] + [e.time for e in errors if e.time])
    if wait:
        evidence.append(wait)
    evidence.append(s.pool_line())
    sid = subnet.get("subnet") or "<subnet-id>"
    remedy = [f"reserve a range for prefixes: aws ec2 create-subnet-cidr-reservation --subnet-id {sid} "
              f"--reservation-type prefix --cidr <a free range>",
              "or give pods a new subnet (secondary VPC CIDR, subnet discovery or custom networking)",
              "or turn prefix delegation off for nodes in this subnet (single /32s still fit)"]
    return Cause("no-free-prefix", f"no free /28 in {sid} for prefix delegation (InsufficientCidrBlocks)",
                 evidence, remedy, dict(subnet, errors=counts, retry_after=until, last=last))


def throttled(s: Situation) -> Cause | None:
    errors = s.errors_with(THROTTLE_CODES)
    if not errors:
        return None
    counts = s.counted_errors(THROTTLE_CODES)
    last = max((e.time for e in errors if e.time), default=None)
    apis = _counts_text(counts) or ", ".join(sorted({e.api for e in errors if e.api}))
    evidence = [f"EC2 throttled ipamd (RequestLimitExceeded): {apis} (awscni_aws_api_error_count)"
                f"{f'; last at {clock(last)}' if last else ''}",
                f'ipamd ({clock(errors[-1].time)}): "{errors[-1].message.splitlines()[0]}"',
                "each call was already retried by the SDK with back-off; ipamd tries again at its next 5 s pool check",
                s.pool_line()]
    remedy = ["EC2's request limits are per account and Region, shared by every node's ipamd, autoscalers and "
              "scripts: find the busy caller (CloudTrail)",
              "fewer calls per pod: a larger WARM_IP_TARGET/MINIMUM_IP_TARGET batch addresses, prefix delegation "
              "brings 16 addresses per call",
              "request a higher EC2 API rate limit; usually transient: pods start once calls succeed"]
    return Cause("throttled", f"EC2 is throttling ipamd's calls (RequestLimitExceeded, {apis})", evidence, remedy,
                 {"errors": counts, "last": last})


def current(causes: list[Cause], s: Situation) -> list[Cause]:
    """The EC2 causes still in force, most recent first: one is over when EC2 has since answered
    otherwise (a later ENI created or freed, or a later error of another kind)."""
    successes = [r.time for r in s.log if r.time is not None and r.message.startswith(SUCCESS_LINES)]
    kept = []
    for cause in causes:
        last = cause.numbers.get("last")
        others = [o.numbers.get("last") for o in causes if o is not cause and o.numbers.get("last")]
        if last is not None and any(t > last for t in successes + others):
            continue
        kept.append(cause)
    return sorted(kept, key=lambda c: -(c.numbers.get("last") or float("inf")))
