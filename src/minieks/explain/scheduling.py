"""Causes for a pod no node was given: max pods reached, or another scheduler verdict.

The scheduler counts pods against each node's max pods (status.allocatable.pods), never
addresses; on EKS max pods comes from the ENI arithmetic of the instance type.
"""

from __future__ import annotations

from minieks.explain.diagnosis import Cause
from minieks.explain.evidence import clock, parse_time
from minieks.aws.max_pods import HOST_NETWORK_PODS
from minieks.explain.situation import Situation

TOO_MANY_PODS = "Too many pods"
MAX_NODE_LINES = 10


def _scheduler_message(s: Situation) -> tuple[str, dict | None]:
    if s.scheduling_events:
        last = max(s.scheduling_events, key=lambda e: parse_time(e.get("lastTimestamp")) or 0.0)
        return last.get("message", ""), last
    for c in (s.facts.pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return c.get("message", ""), None
    return "", None


def _repeat_note(event: dict | None) -> str:
    if not event:
        return ""
    count = int(event.get("count") or 1)
    first = clock(parse_time(event.get("firstTimestamp")))
    return f" (×{count} since {first})" if count > 1 else f" (at {first})"


def scheduling_cause(s: Situation) -> Cause:
    message, event = _scheduler_message(s)
    if TOO_MANY_PODS in message:
        return max_pods_cause(s, message, event)
    if message:
        return Cause("unschedulable", f"the scheduler cannot place it: {message}",
                     [f'scheduler: "{message}"{_repeat_note(event)}'],
                     ["read the scheduler's reasons: node selectors, taints, unschedulable or NotReady nodes"],
                     {"message": message})
    return Cause("waiting-for-scheduler", "not scheduled yet, and the scheduler has not said why",
                 ["no FailedScheduling event and no PodScheduled condition yet"],
                 ["wait a few seconds; the scheduler looks at every new pod"])


def formula_line(s: Situation, instance_type: str, max_pods: int) -> str | None:
    """e.g. "max pods 17 on t3.medium = 3 ENIs × (6 − 1) + 2"; None when the node's value differs."""
    limits = s.facts.types.get(instance_type)
    if limits is None:
        return None
    value = limits.max_enis * (limits.ipv4_per_eni - 1) + HOST_NETWORK_PODS
    if value != max_pods:
        return None
    return (f"max pods {max_pods} on {instance_type} = {limits.max_enis} ENIs × ({limits.ipv4_per_eni} − 1) + "
            f"{HOST_NETWORK_PODS}: one pod per secondary address, plus aws-node and kube-proxy on the host network")


def max_pods_cause(s: Situation, message: str, event: dict | None) -> Cause:
    nodes = sorted(s.facts.nodes, key=lambda n: n.name)
    full = [n for n in nodes if n.pods >= n.max_pods]
    evidence = [f'scheduler: "{message}"{_repeat_note(event)}']
    for n in nodes[:MAX_NODE_LINES]:
        kind = f" ({n.instance_type})" if n.instance_type else ""
        evidence.append(f"{n.name}{kind}: {n.pods}/{n.max_pods} pods{'' if n.ready else ', NotReady'}")
    if len(nodes) > MAX_NODE_LINES:
        evidence.append(f"... and {len(nodes) - MAX_NODE_LINES} more nodes")
    types = sorted({(n.instance_type, n.max_pods) for n in nodes if n.instance_type})
    for itype, max_pods in types:
        line = formula_line(s, itype, max_pods)
        if line:
            evidence.append(line)
    evidence.append("the scheduler counts pods against max pods, not addresses: no EC2 call happens for this pod "
                    "until a node has room")
    remedy = ["more nodes: scale the node group (Cluster Autoscaler or Karpenter add nodes for Pending pods)"]
    for itype, _ in types:
        limits = s.facts.types.get(itype)
        if limits and limits.max_pods_pd:
            remedy.append(f"prefix delegation (ENABLE_PREFIX_DELEGATION=true): a {itype} node gets max pods "
                          f"{limits.max_pods_pd} (nodes launched after the change)")
    remedy += ["a larger instance type (more ENIs × addresses per ENI, so a higher max pods)",
               "or fewer replicas"]
    title = (f"max pods reached: {len(full)}/{len(nodes)} nodes are full "
             f"({', '.join(f'{n.pods}/{n.max_pods}' for n in nodes[:3])}{'...' if len(nodes) > 3 else ''} pods)")
    return Cause("max-pods", title, evidence, remedy,
                 {"nodes": len(nodes), "full_nodes": len(full),
                  "pods": {n.name: n.pods for n in nodes}, "max_pods": {n.name: n.max_pods for n in nodes}})


def out_of_pods_cause(s: Situation) -> Cause:
    """A pod that skipped the scheduler (nodeName set) and was refused by the kubelet."""
    message = (s.facts.pod.get("status") or {}).get("message", "")
    return Cause("max-pods", "the kubelet refused it: the node is at max pods (OutOfpods)",
                 [f'kubelet: "{message}"'],
                 ["do not set nodeName by hand on a full node; let the scheduler place the pod",
                  "more nodes, prefix delegation or a larger instance type raise the room"],
                 {"message": message})
