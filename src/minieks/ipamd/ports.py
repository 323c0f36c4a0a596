"""What ipamd needs from the node and the cluster, as small interfaces with simple adapters.

- NodeNetwork: the node's kernel (host set-up, per-ENI route tables, rule clean-up). The lab's
  adapter programs namespaces; NoNetwork does nothing, for the planner and unit tests.
- ClusterFacts: max pods, the node's ENIConfig, schedulability. StaticCluster answers from
  configuration; the Kubernetes API adapter arrives with the control plane.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from minieks.ipamd.awsutils import EniInfo
from minieks.ipamd.checkpoint import RuleDelete


class NodeNetwork(Protocol):
    def setup_host_network(self, vpc_cidrs: list[str], primary_ip: str, primary_mac: str) -> None: ...
    def setup_eni_network(self, eni: EniInfo, route_table: int) -> None: ...
    def remove_eni_rules(self, eni_primary_ip: str) -> None: ...
    def host_links(self) -> list[str] | None: ...
    def delete_rules(self, rules: Iterable[RuleDelete]) -> None: ...
    def update_pod_rule(self, pod_ip: str, route_table: int) -> None: ...


class NoNetwork:
    """No kernel: the planner's node, and tests of the pool logic."""

    def setup_host_network(self, vpc_cidrs: list[str], primary_ip: str, primary_mac: str) -> None:
        pass

    def setup_eni_network(self, eni: EniInfo, route_table: int) -> None:
        pass

    def remove_eni_rules(self, eni_primary_ip: str) -> None:
        pass

    def host_links(self) -> list[str] | None:
        return None          # unknown: keep every checkpoint entry

    def delete_rules(self, rules: Iterable[RuleDelete]) -> None:
        pass

    def update_pod_rule(self, pod_ip: str, route_table: int) -> None:
        pass


@dataclass(frozen=True)
class EniConfig:
    """crd.k8s.amazonaws.com/v1alpha1 ENIConfig spec: where custom-networking ENIs go."""

    name: str
    subnet: str
    security_groups: tuple[str, ...] = ()


class ClusterFacts(Protocol):
    def max_pods(self) -> int | None: ...
    def eni_config(self) -> EniConfig | None: ...
    def unschedulable(self) -> bool: ...


@dataclass
class StaticCluster:
    """Cluster facts from configuration (no API server)."""

    max_pods_value: int | None = None
    eni_configs: dict[str, EniConfig] = field(default_factory=dict)
    eni_config_name: str = "default"
    is_unschedulable: bool = False

    def max_pods(self) -> int | None:
        return self.max_pods_value

    def eni_config(self) -> EniConfig | None:
        return self.eni_configs.get(self.eni_config_name)

    def unschedulable(self) -> bool:
        return self.is_unschedulable
