"""Address slots of one ENI: every address a pod could get there, and what it is doing now.

EC2 says which addresses the ENI holds (secondary IPs, and /28 prefixes that each stand for 16
addresses); ipamd's introspection says which of them a pod holds and which were released less
than IP_COOLDOWN_PERIOD ago. The ENI's own primary address is never a pod's, so it is no slot.
Pure functions of plain data, so the board's colours can be tested without a kernel.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime, timezone

ASSIGNED = "assigned"   # a pod holds it
WARM = "warm"           # in ipamd's pool, free: the next pod gets an address at once
COOLDOWN = "cooldown"   # released; ipamd hands it out again only after IP_COOLDOWN_PERIOD
SYNCING = "syncing"     # EC2 has it on the ENI, ipamd has not taken it into its pool (yet)
UNKNOWN = "unknown"     # ipamd did not answer: only pods' status.podIP tells who holds what
STATES = (ASSIGNED, WARM, COOLDOWN, SYNCING, UNKNOWN)
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_go_time(text: str | None) -> float | None:
    """Unix seconds of a Go time.Time in JSON (RFC 3339, up to nanoseconds); None for Go's zero."""
    if not text or text == GO_ZERO_TIME:
        return None
    stamp, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return whole + (float("0." + fraction) if fraction else 0.0)


def ipamd_enis(document: Mapping | None) -> dict[str, dict]:
    """ENI id → ENI JSON, over every network card of a `/v1/enis` document."""
    found: dict[str, dict] = {}
    for infos in (document or {}).values():
        found.update((infos or {}).get("ENIs") or {})
    return found


def _owner(entry: Mapping) -> str | None:
    meta = entry.get("IPAMMetadata") or {}
    if meta.get("k8sPodName"):
        return f"{meta.get('k8sPodNamespace') or 'default'}/{meta['k8sPodName']}"
    return None


def _is_assigned(entry: Mapping) -> bool:
    key = entry.get("IPAMKey") or {}
    return bool(_owner(entry) or key.get("networkName") or key.get("containerID"))


def slot(ip: str, prefix: str | None, cidr: Mapping | None, ipamd_answered: bool,
         pods_by_ip: Mapping[str, str], now: float, cooldown: float) -> dict:
    """One address's state; `cidr` is ipamd's entry for the /32 or /28 it belongs to (None: unknown)."""
    out: dict[str, object] = {"ip": ip, "prefix": prefix, "state": WARM, "pod": None, "cooldownUntil": None}
    if not ipamd_answered:
        pod = pods_by_ip.get(ip)
        out.update(state=ASSIGNED if pod else UNKNOWN, pod=pod)
        return out
    if cidr is None:
        out["state"] = SYNCING
        return out
    entry = (cidr.get("IPAddresses") or {}).get(ip)
    if entry is None:
        return out      # a prefix's address no pod has had yet, or a fresh secondary IP: warm
    if _is_assigned(entry):
        out.update(state=ASSIGNED, pod=_owner(entry) or pods_by_ip.get(ip))
        return out
    released = parse_go_time(entry.get("UnassignedTime"))
    if released is not None and now - released <= cooldown:   # upstream: time.Since(t) <= period
        out.update(state=COOLDOWN, cooldownUntil=round(released + cooldown, 3))
    return out


def eni_slots(interface: Mapping, ipamd_eni: Mapping | None, ipamd_answered: bool,
              pods_by_ip: Mapping[str, str], now: float, cooldown: float) -> list[dict]:
    """Every slot of the ENI: secondary IPs in address order (EC2 hands them out scattered), then
    each prefix's 16 addresses; then any address ipamd still holds that EC2 no longer lists (it is
    being released)."""
    cidrs: Mapping[str, Mapping] = (ipamd_eni or {}).get("AvailableIPv4Cidrs") or {}
    out: list[dict] = []
    seen: set[str] = set()
    for ip in sorted(list(interface.get("ipv4s") or [])[1:], key=ipaddress.IPv4Address):
        out.append(slot(ip, None, cidrs.get(f"{ip}/32"), ipamd_answered, pods_by_ip, now, cooldown))
        seen.add(f"{ip}/32")
    for prefix in interface.get("ipv4-prefix") or []:
        network = ipaddress.IPv4Network(prefix, strict=False)
        for address in network:
            out.append(slot(str(address), str(network), cidrs.get(str(network)), ipamd_answered,
                            pods_by_ip, now, cooldown))
        seen.add(str(network))
    for key in sorted(set(cidrs) - seen, key=lambda k: ipaddress.IPv4Network(k, strict=False)):
        network = ipaddress.IPv4Network(key, strict=False)
        if network.prefixlen == 32 and str(network.network_address) == interface.get("local-ipv4"):
            continue
        prefix = str(network) if network.prefixlen < 32 else None
        for address in network:
            out.append(slot(str(address), prefix, cidrs[key], ipamd_answered, pods_by_ip, now, cooldown))
    return out


def counts(slots: list[dict]) -> dict[str, int]:
    """How many slots are in each state (every state present, zeros included)."""
    tally = {state: 0 for state in STATES}
    for item in slots:
        tally[item["state"]] += 1
    return tally
