"""The facts of one pod read once into the numbers every cause checks: its state, its node's
address pool and limits, the recent ipamd log and EC2 errors, its sandbox failures."""

from __future__ import annotations

from dataclasses import dataclass, field

from minieks.explain.evidence import (
    Ec2ErrorSeen, LogRecord, Metrics, PoolView, ec2_errors, parse_log, parse_metrics, parse_time, pool_view)
from minieks.explain.facts import Facts, TypeLimits
from minieks.ipamd.config import DEFAULT_IP_COOLDOWN_SECONDS, env_bool, env_cooldown, env_max_eni

RECENT_SECONDS = 600.0           # EC2 errors older than this no longer explain a pod stuck now
BEFORE_POD_SECONDS = 120.0       # ipamd's InsufficientCidr wait started before the pod may still block it
DEFAULT_COOLDOWN = float(DEFAULT_IP_COOLDOWN_SECONDS)


def pod_state(pod: dict) -> str:
    """The word kubectl's STATUS column shows."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return "Completed"
    if phase == "Failed":
        return status.get("reason") or "Failed"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return waiting["reason"]
    if phase == "Pending" and spec.get("nodeName"):
        return "ContainerCreating"
    return phase


def _event_time(event: dict) -> float | None:
    return parse_time(event.get("firstTimestamp") or event.get("eventTime") or event.get("lastTimestamp"))


@dataclass
class Situation:
    facts: Facts
    namespace: str = ""
    name: str = ""
    state: str = ""
    node_name: str | None = None
    created: float | None = None
    window_start: float = 0.0
    metrics: Metrics = field(default_factory=Metrics)
    log: list[LogRecord] = field(default_factory=list)
    recent_errors: list[Ec2ErrorSeen] = field(default_factory=list)
    pool: PoolView | None = None
    pd: bool = False
    cooldown_period: float = DEFAULT_COOLDOWN
    sandbox_events: list[dict] = field(default_factory=list)
    scheduling_events: list[dict] = field(default_factory=list)

    @classmethod
    def of(cls, facts: Facts) -> Situation:
        pod = facts.pod
        meta = pod.get("metadata") or {}
        s = cls(facts=facts, namespace=meta.get("namespace") or "default", name=meta.get("name", ""),
                state=pod_state(pod), node_name=(pod.get("spec") or {}).get("nodeName"),
                created=parse_time(meta.get("creationTimestamp")))
        env = facts.cni_env
        s.cooldown_period = float(env_cooldown(env))          # read as ipamd reads aws-node's env
        pd_env = env_bool(env, "ENABLE_PREFIX_DELEGATION", False) if "ENABLE_PREFIX_DELEGATION" in env else None
        ipamd = facts.ipamd
        s.pool = pool_view(ipamd.enis if ipamd else None, facts.now, s.cooldown_period, pd_env)
        s.pd = s.pool.pd if s.pool else bool(pd_env)
        s.metrics = parse_metrics(ipamd.metrics if ipamd else None)
        s.log = parse_log(ipamd.log_lines if ipamd else [], facts.log_utc_offset)
        start = facts.now - RECENT_SECONDS
        if s.created is not None:
            start = max(start, s.created - BEFORE_POD_SECONDS)
        s.window_start = start
        s.recent_errors = [e for e in ec2_errors(s.log) if e.time is None or e.time >= start]
        events = sorted(facts.events, key=lambda e: _event_time(e) or 0.0)
        s.sandbox_events = [e for e in events if e.get("reason") == "FailedCreatePodSandBox"]
        s.scheduling_events = [e for e in events if e.get("reason") == "FailedScheduling"]
        return s

    # ------------------------------------------------------------------------- the pod
    @property
    def pod_ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def last_sandbox_message(self) -> str:
        if not self.sandbox_events:
            return ""
        last = max(self.sandbox_events, key=lambda e: parse_time(e.get("lastTimestamp")) or _event_time(e) or 0.0)
        return last.get("message", "")

    @property
    def sandbox_failures(self) -> int:
        return sum(int(e.get("count") or 1) for e in self.sandbox_events)

    @property
    def sandbox_ids(self) -> list[str]:
        ids = []
        for e in self.sandbox_events:
            text = e.get("message", "")
            marker = 'for sandbox "'
            if marker in text:
                ids.append(text.split(marker, 1)[1].split('"', 1)[0])
        return ids

    # ------------------------------------------------------------------------- the node
    @property
    def max_pods(self) -> int | None:
        node = self.facts.node or {}
        status = node.get("status") or {}
        value = (status.get("allocatable") or {}).get("pods") or (status.get("capacity") or {}).get("pods")
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    @property
    def pods_on_node(self) -> int | None:
        return next((n.pods for n in self.facts.nodes if n.name == self.node_name), None)

    @property
    def instance_type(self) -> str:
        labels = ((self.facts.node or {}).get("metadata") or {}).get("labels") or {}
        return labels.get("node.kubernetes.io/instance-type", "")

    @property
    def limits(self) -> TypeLimits | None:
        return self.facts.types.get(self.instance_type)

    @property
    def max_eni_env(self) -> int | None:
        value = env_max_eni(self.facts.cni_env)
        return value if value >= 1 else None

    @property
    def max_eni(self) -> int | None:
        """ENIs ipamd may use: awscni_eni_max, else min(MAX_ENI, the type's limit)."""
        value = self.metrics.value("awscni_eni_max")
        if value is not None:
            return int(value)
        if self.limits:
            cap = self.max_eni_env
            return min(cap, self.limits.max_enis) if cap else self.limits.max_enis
        return None

    @property
    def slots_per_eni(self) -> int | None:
        return self.limits.ipv4_per_eni - 1 if self.limits else None

    @property
    def addresses_per_slot(self) -> int:
        return 16 if self.pd else 1

    @property
    def ip_max(self) -> int | None:
        """Addresses the node can ever hold: awscni_ip_max, else ENIs × slots × (1 or 16)."""
        value = self.metrics.value("awscni_ip_max")
        if value is not None:
            return int(value)
        if self.max_eni is not None and self.slots_per_eni is not None:
            return self.max_eni * self.slots_per_eni * self.addresses_per_slot
        return None

    @property
    def eni_count(self) -> int | None:
        if self.pool is not None:
            return len(self.pool.enis)
        value = self.metrics.value("awscni_eni_allocated")
        return int(value) if value is not None else None

    def eni_full(self) -> bool:
        """Every ENI ipamd may use is attached and holds all the slots it can."""
        if self.pool is None or self.max_eni is None or len(self.pool.enis) < self.max_eni:
            return False
        if self.ip_max is not None and self.pool.total >= self.ip_max:
            return True
        per = self.slots_per_eni
        return per is not None and all(e.slots >= per for e in self.pool.usable)

    def pool_line(self) -> str:
        """e.g. "pool: ENIs 2/3, 10 addresses: 9 assigned, 1 in cooldown, 0 free (the node can hold 15)"."""
        p = self.pool
        if p is None:
            return "pool: unknown (introspection not reachable)"
        enis = f"ENIs {len(p.enis)}/{self.max_eni}" if self.max_eni else f"ENIs {len(p.enis)}"
        unit = " (prefixes: 16 addresses per /28)" if p.pd else ""
        hold = f" (the node can hold {self.ip_max})" if self.ip_max is not None else ""
        return (f"pool: {enis}, {p.total} addresses{unit}: {p.assigned} assigned, {p.cooldown} in cooldown, "
                f"{max(p.free, 0)} free{hold}")

    def counted_errors(self, codes: tuple[str, ...]) -> dict[str, int]:
        """awscni_aws_api_error_count per API for these codes (failed calls after the SDK's retries)."""
        out: dict[str, int] = {}
        for labels, value in self.metrics.series("awscni_aws_api_error_count"):
            if labels.get("error") in codes and value > 0:
                api = labels.get("api", "?")
                out[api] = out.get(api, 0) + int(value)
        return out

    def errors_with(self, codes: tuple[str, ...]) -> list[Ec2ErrorSeen]:
        return [e for e in self.recent_errors if e.code in codes]

    def log_matching(self, text: str, recent: bool = True) -> list[LogRecord]:
        return [r for r in self.log if text in r.message and
                (not recent or r.time is None or r.time >= self.window_start)]
