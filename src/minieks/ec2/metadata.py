"""What an instance's metadata service (IMDS) tells it about its network, from the EC2 state.

On AWS, ipamd learns its ENIs from IMDS (MACs, device numbers, addresses, prefixes, subnet) without
spending EC2 API calls or throttling tokens. The emulator gives the same view here, read straight
from its state: in process, or over the server's admin path `/_minieks/metadata/<instance-id>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minieks.ec2.address_space import ip_str
from minieks.ec2.errors import Ec2Error

if TYPE_CHECKING:
    from minieks.ec2.service import Ec2Service


def instance_metadata(svc: Ec2Service, instance_id: str) -> dict:
    """{"instance-id", "instance-type", "local-ipv4", "mac", "interfaces": [...]} for one instance."""
    with svc._lock:
        instance = svc.state.instances.get(instance_id)
        if instance is None or instance.state == "terminated":
            raise Ec2Error("InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist")
        vpc = svc.state.vpcs[instance.vpc_id]
        interfaces = []
        for eni in svc.state.enis.values():
            if not eni.attachment or eni.attachment.instance_id != instance_id:
                continue
            subnet = svc.state.subnets[eni.subnet_id]
            interfaces.append({
                "interface-id": eni.id, "mac": eni.mac, "device-number": eni.attachment.device_index,
                "network-card": eni.attachment.network_card_index, "local-ipv4": ip_str(eni.primary_ip),
                "ipv4s": [ip_str(eni.primary_ip)] + [ip_str(i) for i in eni.secondary_ips],
                "ipv4-prefix": [f"{ip_str(p)}/28" for p in eni.prefixes], "subnet-id": eni.subnet_id,
                "subnet-ipv4-cidr-block": subnet.cidr_block, "vpc-ipv4-cidr-blocks": [vpc.cidr_block],
                "security-group-ids": [g for g, _ in eni.groups], "tags": dict(eni.tags),
                "interface-type": eni.interface_type,
            })
        interfaces.sort(key=lambda i: (i["network-card"], i["device-number"]))
        primary = interfaces[0]
        return {"instance-id": instance.id, "instance-type": instance.instance_type.name,
                "placement": {"availability-zone": instance.availability_zone},
                "local-ipv4": primary["local-ipv4"], "mac": primary["mac"], "interfaces": interfaces}
