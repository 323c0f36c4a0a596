"""Node namespaces: what an instance's own kernel looks like before ipamd touches it.

A node is made with explicit sysctls (nothing inherited from the host), `lo` up with the instance
id as its alias (how a restarted fabric maps namespaces back to instances), and resolv.conf
pointing at the VPC resolver. Its `eth<dev>` links are plugged in by the VPC router; this module
then configures them as an AMI's DHCP client would, for the primary ENI only: its primary address
with the subnet's length, the default route via the subnet gateway, MTU 9001. Secondary ENIs stay
bare links: ipamd's SetupENINetwork gives them their address and route table.
"""

from __future__ import annotations

from dataclasses import dataclass

from minieks.fabric import kernel, netns, resolv
from minieks.fabric.kernel import PROTO_BOOT
from minieks.fabric.view import EniView


@dataclass(frozen=True)
class NodeSettings:
    """The node's kernel settings before aws-node runs (AL2's defaults; configurable, report §7)."""

    rp_filter_all: int = 1
    rp_filter_default: int = 1
    mtu: int = 9001

    def sysctls(self) -> dict[str, object]:
        return {**kernel.base_sysctls(True), "net.ipv4.conf.all.rp_filter": self.rp_filter_all,
                "net.ipv4.conf.default.rp_filter": self.rp_filter_default}


def create(namespace: str, instance_id: str, settings: NodeSettings) -> None:
    """The node's namespace, configured; idempotent (a restart re-asserts it)."""
    netns.create(namespace)
    kernel.sysctls(namespace, settings.sysctls())
    with netns.iproute(namespace) as ipr:
        ipr.link("set", index=1, state="up", ifalias=instance_id)


def instance_of(namespace: str) -> str | None:
    """The instance a node namespace stands for (its `lo` alias), None if unmarked or gone."""
    try:
        with netns.iproute(namespace) as ipr:
            return ipr.link("get", index=1)[0].get("ifalias") or None
    except (OSError, netns.NetnsError):
        return None


def delete(namespace: str) -> None:
    """Remove the node (the processes in it, its links, its resolv.conf)."""
    netns.delete(namespace)
    resolv.remove_resolv_conf(namespace)


def configure_link(namespace: str, ifname: str, eni: EniView, settings: NodeSettings) -> None:
    """Bring an ENI's link up; for the primary ENI also what DHCP would set. Idempotent."""
    with netns.iproute(namespace) as ipr:
        index = kernel.link_index(ipr, ifname)
        if index is None:
            raise netns.NetnsError(f"{ifname} missing in {namespace}")
        ipr.link("set", index=index, mtu=settings.mtu, state="up")
        if not eni.is_primary:
            return
        kernel.add_address(ipr, index, eni.primary_ip, eni.prefixlen)
        ipr.route("replace", dst="0.0.0.0/0", gateway=eni.gateway, oif=index, proto=PROTO_BOOT)
