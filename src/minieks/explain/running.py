"""The short answer for a pod that runs: where, with which address, on which ENI and device."""

from __future__ import annotations

import ipaddress

from minieks.explain.diagnosis import Cause
from minieks.explain.evidence import clock, parse_time
from minieks.explain.situation import Situation


def _eni_from_ec2(s: Situation, ip: str) -> tuple[str, int | None] | None:
    """The ENI (and device index) EC2 has the address on: a secondary IP or inside a prefix."""
    if not s.facts.ec2:
        return None
    address = ipaddress.ip_address(ip)
    for eni in s.facts.ec2.network_interfaces:
        device = (eni.get("Attachment") or {}).get("DeviceIndex")
        if any(a.get("PrivateIpAddress") == ip for a in eni.get("PrivateIpAddresses") or []):
            return eni.get("NetworkInterfaceId", ""), device
        for prefix in eni.get("Ipv4Prefixes") or []:
            if address in ipaddress.ip_network(prefix.get("Ipv4Prefix", "0.0.0.0/32"), strict=False):
                return eni.get("NetworkInterfaceId", ""), device
    return None


def running_cause(s: Situation) -> Cause:
    pod = s.facts.pod
    ip = (pod.get("status") or {}).get("podIP", "")
    node = s.node_name or "?"
    if (pod.get("spec") or {}).get("hostNetwork"):
        return Cause("running", f"is Running on {node} with the node's own address {ip} (hostNetwork: no pod "
                                f"address, no ENI slot)", numbers={"ip": ip, "host_network": True})
    eni_id, device = "", None
    found = s.pool.find_pod(s.namespace, s.name) if s.pool else None
    if found:
        eni_id, device = found[0].id, found[0].device
    else:
        from_ec2 = _eni_from_ec2(s, ip) if ip else None
        if from_ec2:
            eni_id, device = from_ec2
    where = f" (ENI {eni_id}, device {device})" if eni_id else ""
    evidence = []
    if s.sandbox_events:
        first = min(parse_time(e.get("firstTimestamp")) or 0.0 for e in s.sandbox_events)
        last = max(parse_time(e.get("lastTimestamp")) or 0.0 for e in s.sandbox_events)
        evidence.append(f"it waited for its sandbox: {s.sandbox_failures} FailedCreatePodSandBox between "
                        f"{clock(first)} and {clock(last)}")
    return Cause("running", f"is Running on {node} with {ip}{where}", evidence,
                 numbers={"ip": ip, "eni": eni_id, "device": device})
