"""Causes inside the node's address pool (ipamd's datastore, /v1/enis): every ENI full, addresses
only in their cooldown, the pool capped at max pods, or the warm pool still refilling — with the
EC2 calls in flight or just made."""

from __future__ import annotations

from minieks.explain.diagnosis import Cause
from minieks.explain.evidence import ENI_LIMIT_LINE, clock, duration
from minieks.aws.max_pods import HOST_NETWORK_PODS
from minieks.explain.situation import Situation

IN_FLIGHT_LINES = ("Trying to allocate", "Created a new ENI", "Reconcile and add a new ENI", "Successfully freed ENI")


def _no_free(s: Situation) -> bool:
    return s.pool is not None and s.pool.free <= 0


def ip_cooldown(s: Situation) -> Cause | None:
    p = s.pool
    if not _no_free(s) or p.cooldown == 0:
        return None
    first = p.first_cooldown_end
    period = int(s.cooldown_period)
    evidence = [f"{p.cooldown} address(es) were released by deleted pods less than {period} s ago and cannot be "
                f"handed out before IP_COOLDOWN_PERIOD={period}s has passed",
                f"the first is usable again at {clock(first)} (in {duration(first - s.facts.now)})" if first else "",
                s.pool_line(),
                "cooldown addresses count as available for the warm targets, so ipamd asks EC2 for none meanwhile"]
    remedy = ["nothing to do for this pod: the kubelet's next sandbox retry after that time gets the address",
              "with heavy pod churn keep more addresses warm (WARM_IP_TARGET / MINIMUM_IP_TARGET)"]
    return Cause("ip-cooldown", f"addresses are free but all {p.cooldown} in their {period} s cooldown",
                 [e for e in evidence if e], remedy,
                 {"cooldown": p.cooldown, "assigned": p.assigned, "total": p.total, "usable_at": first})


def eni_limit(s: Situation) -> Cause | None:
    if not _no_free(s) or not s.eni_full():
        return None
    p, limits = s.pool, s.limits
    in_use = f"{p.assigned}/{s.ip_max} addresses in use" + (f", {p.cooldown} in cooldown" if p.cooldown else "")
    numbers_line = f"{len(p.enis)}/{s.max_eni} ENIs, {in_use}, max pods {s.max_pods}"
    evidence = ["every ENI ipamd may attach is attached and holds all the addresses it can"]
    cap = s.max_eni_env
    if cap and limits and cap < limits.max_enis:
        evidence.append(f"MAX_ENI={cap} caps ipamd at {cap} ENI(s); {limits.instance_type} allows {limits.max_enis}")
    elif limits:
        evidence.append(f"{limits.instance_type} allows {limits.max_enis} ENIs × {limits.ipv4_per_eni - 1} "
                        f"{'prefixes' if s.pd else 'addresses'} ({limits.ipv4_per_eni} IPv4 per ENI, one is the "
                        f"ENI's own primary)")
    if s.log_matching(ENI_LIMIT_LINE):
        evidence.append(f'ipamd: "{ENI_LIMIT_LINE}"')
    pods, max_pods = s.pods_on_node, s.max_pods
    if pods is not None and max_pods is not None and pods < max_pods:
        evidence.append(f"{pods}/{max_pods} pods on the node: the scheduler counts max pods, not addresses, so it "
                        f"keeps placing pods here")
    remedy = []
    if cap and limits and cap < limits.max_enis:
        more = limits.max_enis * (limits.ipv4_per_eni - 1) * s.addresses_per_slot
        remedy.append(f"raise or remove MAX_ENI (up to {limits.max_enis} ENIs, {more} addresses on "
                      f"{limits.instance_type})")
    remedy.append("more nodes: only new capacity helps once every ENI is full")
    if not s.pd and limits:
        pd_pods = f"; max pods {limits.max_pods_pd} on new nodes" if limits.max_pods_pd else ""
        remedy.append(f"prefix delegation (ENABLE_PREFIX_DELEGATION=true): each slot holds a /28, "
                      f"{(s.ip_max or 0) * 16} addresses{pd_pods}")
    remedy.append("a larger instance type (more ENIs and more addresses per ENI)")
    if max_pods is not None and s.ip_max is not None and max_pods > s.ip_max + HOST_NETWORK_PODS:
        remedy.append(f"kubelet's max pods ({max_pods}) is more than the node can address ({s.ip_max} + "
                      f"{HOST_NETWORK_PODS} host-network pods): set it to {s.ip_max + HOST_NETWORK_PODS} (the EKS "
                      f"max-pods calculator with --cni-max-eni) so extra pods stay Pending where autoscalers see them")
    return Cause("eni-limit", f"ENI limit reached: {numbers_line}", evidence, remedy,
                 {"enis": len(p.enis), "max_eni": s.max_eni, "assigned": p.assigned, "cooldown": p.cooldown,
                  "total": p.total, "ip_max": s.ip_max, "max_pods": max_pods, "pods_on_node": pods,
                  "max_eni_env": cap})


def pool_at_max_pods(s: Situation) -> Cause | None:
    max_pods = s.max_pods
    if not _no_free(s) or s.eni_full() or max_pods is None or s.pool.total < max_pods:
        return None
    return Cause("pool-at-max-pods", f"ipamd stopped growing the pool at max pods ({s.pool.total} ≥ {max_pods})",
                 [s.pool_line(), "ipamd never holds more addresses than the node's max pods"],
                 ["raise the node's max pods if it is lower than the ENI arithmetic allows", "or add nodes"],
                 {"total": s.pool.total, "max_pods": max_pods})


def in_flight(s: Situation) -> list[str]:
    """EC2 calls ipamd is making or just made, and addresses EC2 has that ipamd has not taken in yet."""
    lines = []
    for r in s.log:
        if r.time is not None and r.time >= s.window_start and r.message.startswith(IN_FLIGHT_LINES):
            lines.append(f"{clock(r.time)} ipamd: {r.message}")
    lines = lines[-6:]
    ec2 = s.facts.ec2
    if ec2 is None or s.pool is None:
        return lines
    known = {e.id: e for e in s.pool.enis}
    for eni in sorted(ec2.network_interfaces, key=lambda e: (e.get("Attachment") or {}).get("DeviceIndex", 0)):
        attachment = eni.get("Attachment") or {}
        eid = eni.get("NetworkInterfaceId", "")
        if eid not in known and not attachment:
            lines.append(f"EC2: {eid} was created for this node and is {eni.get('Status', '?')}, not attached yet: "
                         f"AttachNetworkInterface in flight")
            continue
        if eid not in known:
            lines.append(f"EC2: {eid} at device {attachment.get('DeviceIndex', '?')} is "
                         f"{attachment.get('Status', eni.get('Status', '?'))}; ipamd has not added it to its pool yet")
            continue
        have = known[eid].slots
        ec2_slots = (len(eni.get("Ipv4Prefixes") or []) if s.pd else
                     sum(1 for a in eni.get("PrivateIpAddresses") or [] if not a.get("Primary")))
        if ec2_slots > have:
            lines.append(f"EC2: {eid} has {ec2_slots} {'prefixes' if s.pd else 'secondary addresses'}, ipamd's "
                         f"pool {have}: {ec2_slots - have} being added")
    return lines


def next_step(s: Situation) -> str | None:
    """What the warm-pool logic does next (§3.5): top up an ENI with room, else attach a new ENI."""
    per, p = s.slots_per_eni, s.pool
    if per is None or p is None:
        return None
    roomy = [e for e in p.usable if e.slots < per]
    kind = "prefixes" if s.pd else "addresses"
    if roomy:
        e = roomy[0]
        return (f"ipamd's next step: AssignPrivateIpAddresses on {e.id} (device {e.device}, {e.slots}/{per} {kind})")
    if s.max_eni is not None and len(p.enis) < s.max_eni:
        return (f"every attached ENI is full ({len(p.enis)} × {per} {kind}): ipamd's next step is a new ENI "
                f"(CreateNetworkInterface, AttachNetworkInterface), {len(p.enis) + 1}/{s.max_eni}")
    return None


def pool_refilling(s: Situation) -> Cause:
    p = s.pool
    flight = in_flight(s)
    env = s.facts.cni_env
    targets = ", ".join(f"{k}={env[k]}" for k in ("WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET",
                                                   "WARM_PREFIX_TARGET") if env.get(k) not in (None, "", "0")
                        and (s.pd or k != "WARM_PREFIX_TARGET"))
    evidence = [s.pool_line()]
    step = next_step(s)
    if step:
        evidence.append(step)
    evidence += flight or ["no EC2 call seen yet: ipamd decides at its next 5 s pool check"]
    evidence.append("ipamd checks the pool every 5 s and makes at most one AssignPrivateIpAddresses or one new ENI "
                    "per check; attaching an ENI takes seconds")
    remedy = ["wait: the kubelet retries the sandbox (back-off up to 10 s) and gets an address once they arrive",
              f"for bursts keep more addresses ready{f' (now {targets})' if targets else ''}: "
              f"WARM_IP_TARGET/MINIMUM_IP_TARGET, or WARM_ENI_TARGET"]
    return Cause("pool-refilling", f"no address left on the node ({p.assigned}/{p.total} assigned); "
                                   f"the warm pool is refilling", evidence, remedy,
                 {"assigned": p.assigned, "total": p.total, "enis": len(p.enis), "max_eni": s.max_eni,
                  "in_flight": flight})


def retrying(s: Situation) -> Cause | None:
    p = s.pool
    if p is None or p.free <= 0 or not s.sandbox_events:
        return None
    return Cause("retrying", f"addresses are free again ({p.free}); the kubelet retries the sandbox with back-off",
                 [s.pool_line(), f"{s.sandbox_failures} FailedCreatePodSandBox so far; the kubelet waits up to 10 s "
                                 f"between attempts"],
                 ["nothing to do: the next attempt should get an address"],
                 {"free": p.free, "failures": s.sandbox_failures})
