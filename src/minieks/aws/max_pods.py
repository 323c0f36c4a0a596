"""How many pods a node can run under the VPC CNI, with every term of the arithmetic explained.

Three sources meet here, and EKS users trip over their differences:
- upstream's published eni-max-pods table: ENIs × (IPv4 per ENI − 1) + 2, secondary-IP mode,
  default network card only, no ceiling;
- the EKS AMI's max-pods calculator: the same with prefix delegation (×16 per address slot),
  custom networking (one ENI fewer) and --cni-max-eni, capped at 110 (≤30 vCPUs) or 250;
- what the node can really address: pods on the pod network need one VPC address each, the two
  host-network pods (aws-node, kube-proxy) need none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minieks.aws.instance_types import PD_IPS_PER_PREFIX, InstanceType

HOST_NETWORK_PODS = 2          # aws-node and kube-proxy run with hostNetwork: no pod address
SMALL_NODE_CEILING = 110       # EKS AMI calculator, up to 30 vCPUs
LARGE_NODE_CEILING = 250       # EKS AMI calculator, above 30 vCPUs
CEILING_VCPU_THRESHOLD = 30


class MaxPodsError(ValueError):
    """A combination the real calculator or the CNI refuses; the message says why."""


@dataclass(frozen=True)
class MaxPodsOptions:
    prefix_delegation: bool = False
    custom_networking: bool = False
    max_eni: int | None = None
    show_max_allowed: bool = False      # skip the 110/250 ceiling, as the EKS calculator's flag does

    def __post_init__(self) -> None:
        if self.max_eni is not None and self.max_eni < 1:
            raise MaxPodsError(f"--max-eni must be at least 1, got {self.max_eni}")


@dataclass(frozen=True)
class MaxPods:
    """The result for one instance type; `lines` is the explanation in words and numbers."""

    instance_type: str
    mode: str                      # "secondary-ip" or "prefix-delegation"
    enis: int                      # ENIs whose addresses pods may use
    ipv4_per_eni: int
    addresses_per_slot: int        # 1, or 16 under prefix delegation
    formula: int                   # enis × (ipv4 − 1) × slot + 2
    ceiling: int | None            # applied ceiling, None when not applied
    ceiling_unknown: bool          # no vCPU data, so the ceiling could not be decided
    max_pods: int
    published: int                 # the eni-max-pods table's value for the type
    lines: list[str] = field(default_factory=list)

    @property
    def pod_addresses(self) -> int:
        """Addresses the node can hand to pod-network pods."""
        return self.enis * (self.ipv4_per_eni - 1) * self.addresses_per_slot

    @property
    def workloads(self) -> int:
        """Pods left once the host-network DaemonSet pods are counted."""
        return self.max_pods - HOST_NETWORK_PODS

    def as_dict(self) -> dict[str, object]:
        return {
            "instanceType": self.instance_type,
            "mode": self.mode,
            "enis": self.enis,
            "ipv4PerEni": self.ipv4_per_eni,
            "addressesPerSlot": self.addresses_per_slot,
            "formula": self.formula,
            "ceiling": self.ceiling,
            "ceilingUnknown": self.ceiling_unknown,
            "maxPods": self.max_pods,
            "workloads": self.workloads,
            "podAddresses": self.pod_addresses,
            "published": self.published,
            "explanation": self.lines,
        }


def published_max_pods(t: InstanceType) -> int:
    """Upstream's eni-max-pods value: secondary-IP mode, default card, no ceiling."""
    return t.max_enis * (t.ipv4_per_eni - 1) + HOST_NETWORK_PODS


def ceiling_for(t: InstanceType) -> int | None:
    """The EKS AMI calculator's ceiling, or None when the type's vCPU count is unknown."""
    if t.vcpus is None:
        return None
    return LARGE_NODE_CEILING if t.vcpus > CEILING_VCPU_THRESHOLD else SMALL_NODE_CEILING


def _enis_for_pods(t: InstanceType, opts: MaxPodsOptions, lines: list[str]) -> int:
    enis = t.max_enis
    if t.network_cards > 1:
        lines.append(
            f"{t.name} has {t.network_cards} network cards ({t.total_enis} ENIs in all); the VPC CNI "
            f"uses only the default card {t.default_network_card_index}: {enis} ENIs"
        )
    else:
        lines.append(f"ENIs: {enis} ({t.name}'s limit)")
    if opts.max_eni is not None and opts.max_eni < enis:
        lines.append(f"MAX_ENI={opts.max_eni} caps the ENIs ipamd may attach: {enis} → {opts.max_eni}")
        enis = opts.max_eni
    if opts.custom_networking:
        if enis <= 1:
            raise MaxPodsError(
                f"custom networking leaves {t.name} no ENI for pods: the primary ENI never holds pod "
                f"addresses and only {enis} ENI is allowed"
            )
        lines.append(
            f"custom networking: the primary ENI (eth0) gives no addresses to pods, so {enis} − 1 = {enis - 1} ENIs"
        )
        enis -= 1
    return enis


def calculate(t: InstanceType, opts: MaxPodsOptions = MaxPodsOptions()) -> MaxPods:
    """Max pods for `t` under `opts`, or MaxPodsError for a combination the CNI cannot run."""
    if opts.prefix_delegation and not t.supports_prefix_delegation:
        raise MaxPodsError(
            f"prefix delegation is not supported on {t.name}: its hypervisor is {t.hypervisor} and it is "
            f"not bare metal (prefixes need a Nitro-based instance); the VPC CNI falls back to secondary-IP mode"
        )
    lines: list[str] = []
    enis = _enis_for_pods(t, opts, lines)
    per_eni = t.ipv4_per_eni - 1
    slot = PD_IPS_PER_PREFIX if opts.prefix_delegation else 1
    lines.append(
        f"IPv4 addresses per ENI: {t.ipv4_per_eni}, the first is the ENI's own primary address, "
        f"so {per_eni} slots for pods"
    )
    if opts.prefix_delegation:
        lines.append(f"prefix delegation: each slot holds a /28 prefix of {slot} addresses instead of one address")
        formula = enis * per_eni * slot + HOST_NETWORK_PODS
        lines.append(
            f"{enis} ENIs × ({t.ipv4_per_eni} − 1) prefixes × {slot} addresses + {HOST_NETWORK_PODS} "
            f"host-network pods = {formula}"
        )
    else:
        formula = enis * per_eni + HOST_NETWORK_PODS
        lines.append(
            f"{enis} ENIs × ({t.ipv4_per_eni} − 1) addresses + {HOST_NETWORK_PODS} host-network pods = {formula}"
        )

    ceiling = None if opts.show_max_allowed else ceiling_for(t)
    ceiling_unknown = not opts.show_max_allowed and t.vcpus is None
    max_pods = formula if ceiling is None else min(formula, ceiling)
    if opts.show_max_allowed:
        lines.append("--show-max-allowed: the EKS AMI ceiling (110 / 250) is not applied")
    elif ceiling_unknown:
        lines.append(
            f"ceiling: no vCPU data for {t.name}, so the EKS AMI ceiling (110 up to 30 vCPUs, 250 above) "
            f"cannot be decided; showing the uncapped {formula}"
        )
    elif formula > ceiling:
        lines.append(
            f"ceiling: {t.vcpus} vCPUs {'>' if ceiling == LARGE_NODE_CEILING else '≤'} {CEILING_VCPU_THRESHOLD}, "
            f"so the EKS AMI calculator caps max pods at {ceiling} (the formula gives {formula})"
        )
    else:
        lines.append(f"ceiling: {ceiling} for {t.vcpus} vCPUs; {formula} is under it, so it does not apply")
    lines.append(
        f"max pods {max_pods}; {max_pods - HOST_NETWORK_PODS} left for workloads "
        f"({HOST_NETWORK_PODS} are aws-node and kube-proxy, which use the node's own address)"
    )

    result = MaxPods(
        instance_type=t.name,
        mode="prefix-delegation" if opts.prefix_delegation else "secondary-ip",
        enis=enis,
        ipv4_per_eni=t.ipv4_per_eni,
        addresses_per_slot=slot,
        formula=formula,
        ceiling=ceiling if ceiling is not None and formula > ceiling else None,
        ceiling_unknown=ceiling_unknown,
        max_pods=max_pods,
        published=published_max_pods(t),
        lines=lines,
    )
    _note_capacity(result, lines)
    return result


def _note_capacity(r: MaxPods, lines: list[str]) -> None:
    """Say where a max-pods value would admit pods that can never get an address."""
    room = r.pod_addresses + HOST_NETWORK_PODS
    if r.published > room:
        lines.append(
            f"watch out: the published eni-max-pods value for {r.instance_type} is {r.published}, but only "
            f"{r.pod_addresses} pod addresses exist here; a kubelet left at --max-pods={r.published} admits "
            f"{r.published - room} pods that stay in ContainerCreating (\"failed to assign an IP address\")"
        )
    elif r.max_pods - HOST_NETWORK_PODS < r.pod_addresses:
        lines.append(
            f"address capacity: {r.pod_addresses} pod addresses, more than the {r.workloads} workload pods "
            f"max pods allows; the subnet must still have them free"
            + (" as whole aligned /28 blocks (InsufficientCidrBlocks otherwise)" if r.addresses_per_slot > 1 else "")
        )
