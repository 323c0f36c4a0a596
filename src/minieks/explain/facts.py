"""The plain data `minieks explain` reasons over: what the Kubernetes API, the node's ipamd
(introspection, metrics, log) and EC2 said about one pod at one moment.

gather.py fills these from a running cluster; tests build them by hand. diagnose.py reads them and
never does I/O, so every verdict can be replayed from a saved Facts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TypeLimits:
    """What the instance type allows (the CNI's table), and max pods with prefix delegation."""

    instance_type: str
    max_enis: int
    ipv4_per_eni: int
    max_pods_pd: int | None = None          # the EKS calculator's max pods with prefix delegation


@dataclass
class NodeUsage:
    """One Node as the scheduler sees it: pods bound to it against its allocatable pods."""

    name: str
    pods: int
    max_pods: int
    instance_type: str = ""
    ready: bool = True


@dataclass
class IpamdFacts:
    """The node's ipamd: /v1/enis, /metrics, the tail of ipamd.log, its gRPC socket."""

    enis: dict | None = None                # the /v1/enis document
    enis_error: str | None = None           # why introspection could not be read
    metrics: str | None = None              # /metrics, Prometheus text
    metrics_error: str | None = None
    log_lines: list[str] = field(default_factory=list)
    log_path: str = ""
    socket_path: str = ""
    socket_present: bool | None = None      # None: not known
    unavailable: str | None = None          # why nothing could be asked (not ipamd's fault)


@dataclass
class Ec2Facts:
    """EC2's view of the node: its subnet (DescribeSubnets) and its ENIs (DescribeNetworkInterfaces)."""

    subnet: dict | None = None
    network_interfaces: list[dict] = field(default_factory=list)
    error: str | None = None


@dataclass
class Facts:
    pod: dict                                       # the Pod object as the API returns it
    events: list[dict] = field(default_factory=list)  # Events whose involvedObject is the pod
    now: float = 0.0                                # Unix time the facts were taken
    node: dict | None = None                        # the Node the pod is bound to
    instance_id: str | None = None                  # from the Node's providerID
    nodes: list[NodeUsage] = field(default_factory=list)
    cni_env: dict[str, str] = field(default_factory=dict)   # the aws-node DaemonSet's environment
    types: dict[str, TypeLimits] = field(default_factory=dict)   # instance type -> its limits
    ipamd: IpamdFacts | None = None
    ec2: Ec2Facts | None = None
    log_utc_offset: float = 0.0                     # ipamd.log times are local: seconds east of UTC

    def as_dict(self) -> dict:
        return asdict(self)
