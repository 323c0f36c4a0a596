"""ipamd's view of its own instance, as IMDS gives it: attached ENIs with MACs, device numbers,
addresses, prefixes and subnets. Reading it costs no EC2 call, as on AWS.

Two adapters: InProcessMetadata reads an Ec2Service in this process; HttpMetadata asks the EC2
emulator's server (`/_minieks/metadata/<instance-id>`), for an ipamd in another process.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Protocol

from minieks.ipamd.awsutils import EniInfo


class Metadata(Protocol):
    def attached_enis(self) -> list[EniInfo]: ...


def enis_from_document(doc: dict) -> list[EniInfo]:
    return [EniInfo(id=i["interface-id"], mac=i["mac"], device_number=i["device-number"],
                    network_card=i["network-card"], primary_ip=i["local-ipv4"], subnet_id=i["subnet-id"],
                    subnet_cidr=i["subnet-ipv4-cidr-block"], secondary_ips=tuple(i["ipv4s"][1:]),
                    prefixes=tuple(i["ipv4-prefix"]), tags=dict(i.get("tags", {})),
                    interface_type=i.get("interface-type", "interface"))
            for i in doc["interfaces"]]


class InProcessMetadata:
    def __init__(self, service, instance_id: str):
        self.service = service
        self.instance_id = instance_id

    def attached_enis(self) -> list[EniInfo]:
        from minieks.ec2.metadata import instance_metadata
        return enis_from_document(instance_metadata(self.service, self.instance_id))


class HttpMetadata:
    def __init__(self, endpoint_url: str, instance_id: str, timeout: float = 5.0):
        self.url = f"{endpoint_url.rstrip('/')}/_minieks/metadata/{instance_id}"
        self.timeout = timeout

    def attached_enis(self) -> list[EniInfo]:
        with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
            return enis_from_document(json.load(response))
