"""A boto3-compatible EC2 client that calls an Ec2Service in this process.

Same method names (`create_network_interface(**kwargs)`), same result dicts and the same
`botocore.exceptions.ClientError` on failure as a boto3 client pointed at the HTTP server, so
ipamd and the planner use one code path for both; this one skips HTTP, XML and signing.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

from minieks.ec2.errors import Ec2Error
from minieks.ec2.service import Ec2Service


def action_name(method: str) -> str:
    """boto3's snake_case method name → the EC2 action (create_network_interface → CreateNetworkInterface)."""
    return "".join(part.capitalize() for part in method.split("_"))


class InProcessEc2Client:
    exceptions = SimpleNamespace(ClientError=ClientError)

    def __init__(self, service: Ec2Service):
        self.service = service
        self.meta = SimpleNamespace(region_name=service.region, endpoint_url="inprocess://ec2")

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        action = action_name(method)

        def call(**params: Any) -> dict:
            try:
                result = self.service.call(action, params)
            except Ec2Error as err:
                raise ClientError({"Error": {"Code": err.code, "Message": err.message},
                                   "ResponseMetadata": {"HTTPStatusCode": err.status}}, action) from None
            result["ResponseMetadata"] = {"HTTPStatusCode": 200}
            return result

        call.__name__ = method
        return call
