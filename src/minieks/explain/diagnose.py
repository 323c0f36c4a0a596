"""`diagnose(facts) -> Diagnosis`: why one pod is not Running, named as an expert would name it.

Pure: it reads a Facts (gather.py's snapshot, or a test's hand-made one) and does no I/O. The
first cause is the one blocking the pod now; later ones ("Also") contributed or will block next.

Causes (codes): running, max-pods, unschedulable, waiting-for-scheduler, ipamd-not-ready,
cni-error, ip-cooldown, eni-limit, pool-at-max-pods, subnet-exhausted, no-free-prefix, throttled,
pool-refilling, retrying, sandbox-pending, terminating, completed, failed.
"""

from __future__ import annotations

from minieks.explain import addresses, ec2_causes, ipamd_health, scheduling
from minieks.explain.diagnosis import Cause, Diagnosis
from minieks.explain.evidence import duration
from minieks.explain.facts import Facts
from minieks.explain.running import running_cause
from minieks.explain.situation import Situation
from minieks.explain.timeline import build_timeline

CAUSE_CODES = ("running", "max-pods", "unschedulable", "waiting-for-scheduler", "ipamd-not-ready", "cni-error",
               "ip-cooldown", "eni-limit", "pool-at-max-pods", "subnet-exhausted", "no-free-prefix", "throttled",
               "pool-refilling", "retrying", "sandbox-pending", "terminating", "completed", "failed")


def diagnose(facts: Facts) -> Diagnosis:
    s = Situation.of(facts)
    causes = _causes(s)
    return Diagnosis(pod=s.pod_ref, state=s.state, node=s.node_name, headline=_headline(s, causes[0]),
                     causes=causes, timeline=build_timeline(s), numbers=_numbers(s))


def _causes(s: Situation) -> list[Cause]:
    if s.state == "Running":
        return [running_cause(s)]
    if s.state == "Terminating":
        return [Cause("terminating", "it is being deleted (deletionTimestamp is set)",
                      ["the kubelet stops its containers, then CNI DEL releases its address (30 s cooldown)"])]
    if s.state == "Completed":
        return [Cause("completed", "its containers finished (phase Succeeded)")]
    if s.state == "OutOfpods":
        return [scheduling.out_of_pods_cause(s)]
    if (s.facts.pod.get("status") or {}).get("phase") == "Failed":
        return [Cause("failed", f"it failed: {(s.facts.pod.get('status') or {}).get('message', s.state)}")]
    if not s.node_name:
        return [scheduling.scheduling_cause(s)]
    return _node_causes(s)


def _node_causes(s: Situation) -> list[Cause]:
    """A pod bound to a node but without a sandbox: ipamd, then the pool, then EC2's answers."""
    causes: list[Cause] = []
    for check in (ipamd_health.ipamd_not_ready, ipamd_health.other_cni_error):
        found = check(s)
        if found:
            causes.append(found)
    blocking = [c for c in (addresses.ip_cooldown(s), addresses.eni_limit(s), addresses.pool_at_max_pods(s)) if c]
    from_ec2 = ec2_causes.current([c for c in (ec2_causes.subnet_exhausted(s), ec2_causes.no_free_prefix(s),
                                               ec2_causes.throttled(s)) if c], s)
    free_again = addresses.retrying(s)
    if free_again:
        causes += [free_again, *from_ec2]
    elif s.pool is not None and s.pool.free <= 0:
        causes += blocking + from_ec2
        if not blocking and not from_ec2:
            causes.append(addresses.pool_refilling(s))
    else:
        causes += from_ec2
    if not causes:
        causes.append(Cause("sandbox-pending", "the kubelet is setting up its sandbox; nothing has failed yet",
                            [s.pool_line()], ["wait a few seconds"]))
    return causes


def _headline(s: Situation, primary: Cause) -> str:
    if primary.code == "running":
        return f"Pod {s.pod_ref} {primary.title}."
    where = f" on {s.node_name}" if s.node_name else " (not scheduled)"
    node_id = ""
    if s.node_name and (s.facts.instance_id or s.instance_type):
        node_id = f" ({', '.join(x for x in (s.facts.instance_id, s.instance_type) if x)})"
    age = f" for {duration(s.facts.now - s.created)}" if s.created else ""
    return f"Pod {s.pod_ref} is {s.state}{where}{node_id}{age}."


def _numbers(s: Situation) -> list[str]:
    if s.state == "Running" or not s.node_name:
        return []
    lines = []
    if s.max_pods is not None:
        pods = s.pods_on_node
        lines.append(f"node: {f'{pods}/' if pods is not None else 'max '}{s.max_pods} pods"
                     f"{f', {s.instance_type}' if s.instance_type else ''}")
    lines.append(f"ipamd {s.pool_line()}")
    if s.pool:
        per = s.slots_per_eni
        for e in s.pool.enis:
            kind = "primary" if e.primary else "secondary"
            lines.append(f"  {e.id} device {e.device} ({kind}): {e.slots}{f'/{per}' if per else ''} "
                         f"{'prefixes' if s.pd else 'addresses'}, {e.assigned} assigned, {e.cooldown} in cooldown")
    errors = [(lab, v) for lab, v in s.metrics.series("awscni_aws_api_error_count") if v > 0]
    if errors:
        lines.append("EC2 errors (awscni_aws_api_error_count): " +
                     ", ".join(f"{lab.get('api')} {lab.get('error')} {int(v)}" for lab, v in errors))
    ipamd_errors = [(lab, v) for lab, v in s.metrics.series("awscni_ipamd_error_count") if v > 0]
    if ipamd_errors:
        lines.append("ipamd errors (awscni_ipamd_error_count): " +
                     ", ".join(f"{lab.get('fn')} {int(v)}" for lab, v in ipamd_errors))
    no_ip = s.metrics.value("awscni_no_available_ip_addresses")
    if no_ip:
        lines.append(f"assignments refused for want of an address (awscni_no_available_ip_addresses): {int(no_ip)}")
    subnet = s.facts.ec2.subnet if s.facts.ec2 else None
    if subnet:
        lines.append(f"subnet {subnet.get('SubnetId')} {subnet.get('CidrBlock')}: "
                     f"{subnet.get('AvailableIpAddressCount')} addresses available")
    flight = addresses.in_flight(s) if s.pool is not None and not s.eni_full() else []
    if flight:
        lines.append("EC2 calls in flight / recent:")
        lines.extend(f"  {line}" for line in flight)
    return lines
