"""The EC2 Query codec against botocore itself: botocore's EC2 serializer produces the requests
we decode, and botocore's EC2 response parser reads the XML we encode."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from botocore.model import ListShape, Shape, StructureShape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from minieks.ec2.errors import Ec2Error
from minieks.ec2.query import XMLNS, QueryCodec, default_codec, encode_error, timestamp_text

CODEC: QueryCodec = default_codec()
MODEL = CODEC.model
SERIALIZER = create_serializer("ec2", include_validation=False)
PARSER = create_parser("ec2")
WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)


def wire(action: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The form pairs botocore would POST for this call."""
    request = SERIALIZER.serialize_to_request(params, MODEL.operation_model(action))
    return parse_qsl(urlencode(request["body"]), keep_blank_values=True)


def decode(action: str, params: dict[str, Any]) -> dict[str, Any]:
    decoded_action, decoded = CODEC.decode(wire(action, params))
    assert decoded_action == action
    return decoded


def read_back(action: str, output: dict[str, Any] | None) -> dict[str, Any]:
    """Encode the output and parse it with botocore, as a boto3 client would."""
    body = CODEC.encode(action, output, request_id="req-1")
    parsed = PARSER.parse({"body": body, "headers": {}, "status_code": 200},
                          MODEL.operation_model(action).output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    return parsed


# ------------------------------------------------------------------------------- decoding


def test_create_network_interface_with_tag_specifications() -> None:
    params = {
        "SubnetId": "subnet-1", "Description": "a & b <c>", "SecondaryPrivateIpAddressCount": 2,
        "Groups": ["sg-1", "sg-2"], "DryRun": False,
        "TagSpecifications": [{"ResourceType": "network-interface",
                               "Tags": [{"Key": "k", "Value": "v"}, {"Key": "empty", "Value": ""}]}],
    }
    pairs = dict(wire("CreateNetworkInterface", params))
    assert (pairs["SecurityGroupId.2"], pairs["TagSpecification.1.Tag.2.Value"]) == ("sg-2", "")
    assert decode("CreateNetworkInterface", params) == params


def test_filters_ids_and_pagination() -> None:
    params = {"Filters": [{"Name": "tag-key", "Values": ["x", "y"]},
                          {"Name": "attachment.instance-id", "Values": ["i-1"]}],
              "NetworkInterfaceIds": ["eni-1", "eni-2"], "MaxResults": 5, "NextToken": "abc"}
    pairs = dict(wire("DescribeNetworkInterfaces", params))
    assert pairs["Filter.1.Value.2"] == "y" and pairs["NetworkInterfaceId.2"] == "eni-2"
    assert decode("DescribeNetworkInterfaces", params) == params


def test_query_name_and_nested_structures_in_run_instances() -> None:
    params = {
        "ImageId": "ami-1", "MinCount": 1, "MaxCount": 1, "InstanceType": "m5.large",
        "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": "subnet-1",
                               "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5", "Primary": True}],
                               "Ipv6Addresses": [{"Ipv6Address": "2001:db8::1"}]}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda",
                                 "Ebs": {"VolumeSize": 20, "DeleteOnTermination": True}}],
        "Placement": {"AvailabilityZone": "ap-northeast-2a"},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "n1"}]}],
    }
    pairs = dict(wire("RunInstances", params))
    assert pairs["NetworkInterface.1.PrivateIpAddresses.1.PrivateIpAddress"] == "10.0.0.5"
    assert pairs["BlockDeviceMapping.1.Ebs.VolumeSize"] == "20"
    decoded = decode("RunInstances", params)
    decoded.pop("ClientToken", None)  # botocore fills the idempotency token
    assert decoded == params


def test_booleans_ints_and_lists_of_scalars() -> None:
    params = {"NetworkInterfaceId": "eni-1", "PrivateIpAddresses": ["10.0.0.7"],
              "AllowReassignment": True}
    assert decode("AssignPrivateIpAddresses", params) == params
    assert decode("AssignPrivateIpAddresses", {"NetworkInterfaceId": "eni-1",
                                               "SecondaryPrivateIpAddressCount": 3}) == {
        "NetworkInterfaceId": "eni-1", "SecondaryPrivateIpAddressCount": 3}
    assert decode("DescribeInstanceTypes", {"InstanceTypes": ["m5.large", "t3.micro"]}) == {
        "InstanceTypes": ["m5.large", "t3.micro"]}


def test_out_of_order_indices_and_envelope_keys() -> None:
    pairs = [("Action", "DescribeSubnets"), ("Version", "2016-11-15"),
             ("X-Amz-Signature", "sig"), ("SubnetId.2", "b"), ("SubnetId.1", "a"),
             ("Filter.1.Value.1", "v"), ("Filter.1.Name", "vpc-id")]
    assert CODEC.decode(pairs) == ("DescribeSubnets", {
        "SubnetIds": ["a", "b"], "Filters": [{"Values": ["v"], "Name": "vpc-id"}]})


@pytest.mark.parametrize("key, name", [
    ("Bogus", "Bogus"), ("instanceId", "instanceId"), ("Filter.1.Bogus", "Bogus"),
    ("SubnetId.x", "x"), ("SubnetId.1.Deep", "Deep"), ("DryRun.1", "1"),
])
def test_unknown_parameter(key: str, name: str) -> None:
    with pytest.raises(Ec2Error) as caught:
        CODEC.decode([("Action", "DescribeSubnets"), (key, "1")])
    assert (caught.value.code, caught.value.message, caught.value.status) == (
        "UnknownParameter", f"The parameter {name} is not recognized", 400)


def test_unknown_and_missing_action() -> None:
    with pytest.raises(Ec2Error) as caught:
        CODEC.decode([("Action", "DescribeUnicorns")])
    assert (caught.value.code, caught.value.message) == (
        "InvalidAction", "The action DescribeUnicorns is not valid for this web service.")
    with pytest.raises(Ec2Error) as caught:
        CODEC.decode([("SubnetId.1", "a")])
    assert caught.value.code == "MissingAction"


def test_badly_typed_values() -> None:
    with pytest.raises(Ec2Error) as caught:
        CODEC.decode([("Action", "DescribeSubnets"), ("MaxResults", "many")])
    assert caught.value.code == "InvalidParameterValue" and "MaxResults" in caught.value.message
    with pytest.raises(Ec2Error):
        CODEC.decode([("Action", "DescribeSubnets"), ("DryRun", "yes")])


# ------------------------------------------------------------------------------- encoding

ENI = {
    "NetworkInterfaceId": "eni-0a1b", "SubnetId": "subnet-1", "VpcId": "vpc-1",
    "AvailabilityZone": "ap-northeast-2a", "Description": "aws-K8S-i-1 <&>",
    "InterfaceType": "interface", "MacAddress": "02:00:00:00:00:01", "OwnerId": "111122223333",
    "PrivateIpAddress": "10.0.0.10", "RequesterManaged": False, "SourceDestCheck": True,
    "Status": "in-use",
    "Attachment": {"AttachmentId": "eni-attach-1", "AttachTime": WHEN, "DeleteOnTermination": True,
                   "DeviceIndex": 1, "NetworkCardIndex": 0, "InstanceId": "i-1",
                   "InstanceOwnerId": "111122223333", "Status": "attached"},
    "Groups": [{"GroupId": "sg-1", "GroupName": "default"}],
    "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.0.0.10"},
                           {"Primary": False, "PrivateIpAddress": "10.0.0.11"}],
    "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.1.0/28"}],
    "TagSet": [{"Key": "node.k8s.amazonaws.com/instance_id", "Value": "i-1"}],
}

OUTPUTS: dict[str, dict[str, Any] | None] = {
    "DescribeNetworkInterfaces": {"NetworkInterfaces": [ENI, {**ENI, "NetworkInterfaceId": "eni-2"}],
                                  "NextToken": "page-2"},
    "CreateNetworkInterface": {"NetworkInterface": ENI, "ClientToken": "tok"},
    "AssignPrivateIpAddresses": {"NetworkInterfaceId": "eni-0a1b",
                                 "AssignedPrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.12"}],
                                 "AssignedIpv4Prefixes": [{"Ipv4Prefix": "10.0.2.0/28"}]},
    "DescribeInstanceTypes": {"InstanceTypes": [{
        "InstanceType": "m5.large", "CurrentGeneration": True, "Hypervisor": "nitro",
        "VCpuInfo": {"DefaultVCpus": 2},
        "MemoryInfo": {"SizeInMiB": 8192},
        "NetworkInfo": {"MaximumNetworkInterfaces": 3, "Ipv4AddressesPerInterface": 10,
                        "Ipv6AddressesPerInterface": 10, "Ipv6Supported": True,
                        "EncryptionInTransitSupported": False, "DefaultNetworkCardIndex": 0,
                        "NetworkCards": [{"NetworkCardIndex": 0, "MaximumNetworkInterfaces": 3,
                                          "BaselineBandwidthInGbps": 0.75}]},
        "SupportedUsageClasses": ["on-demand", "spot"],
    }]},
    "DescribeSubnets": {"Subnets": [{"SubnetId": "subnet-1", "VpcId": "vpc-1", "State": "available",
                                     "CidrBlock": "10.0.0.0/19", "AvailableIpAddressCount": 8187,
                                     "AvailabilityZone": "ap-northeast-2a", "DefaultForAz": False,
                                     "MapPublicIpOnLaunch": False, "Ipv6CidrBlockAssociationSet": [],
                                     "Tags": [{"Key": "kubernetes.io/role/cni", "Value": "1"}]}]},
    "RunInstances": {"ReservationId": "r-1", "OwnerId": "111122223333", "Groups": [],
                     "Instances": [{"InstanceId": "i-1", "InstanceType": "m5.large",
                                    "ImageId": "ami-1", "LaunchTime": WHEN, "AmiLaunchIndex": 0,
                                    "State": {"Code": 16, "Name": "running"},
                                    "Placement": {"AvailabilityZone": "ap-northeast-2a"},
                                    "NetworkInterfaces": [{"NetworkInterfaceId": "eni-0a1b",
                                                           "Attachment": {"DeviceIndex": 0,
                                                                          "AttachTime": WHEN}}]}]},
    "UnassignPrivateIpAddresses": None,
}


@pytest.mark.parametrize("action", sorted(OUTPUTS))
def test_output_read_back_by_botocore(action: str) -> None:
    assert read_back(action, OUTPUTS[action]) == (OUTPUTS[action] or {})


def test_document_shape() -> None:
    text = CODEC.encode("DescribeNetworkInterfaces", OUTPUTS["DescribeNetworkInterfaces"], "rid").decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n'
                           f'<DescribeNetworkInterfacesResponse xmlns="{XMLNS}"><requestId>rid</requestId>')
    assert "<networkInterfaceSet><item><networkInterfaceId>eni-0a1b</networkInterfaceId>" in text
    assert "<attachTime>2024-05-06T07:08:09.123Z</attachTime>" in text
    assert "<sourceDestCheck>true</sourceDestCheck>" in text
    assert "<description>aws-K8S-i-1 &lt;&amp;&gt;</description>" in text
    ET.fromstring(text.split("\n", 1)[1])  # well formed
    assert re.fullmatch(r"[0-9a-f-]{36}", ET.fromstring(
        CODEC.encode("DescribeSubnets", {}).split(b"\n", 1)[1])[0].text or "")


def test_action_without_output_returns_true() -> None:
    assert b"<return>true</return></DeleteNetworkInterfaceResponse>" in CODEC.encode(
        "DeleteNetworkInterface", None)


def test_timestamp_text() -> None:
    assert timestamp_text(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05.000Z"
    kst = dt.timezone(dt.timedelta(hours=9))
    assert timestamp_text(dt.datetime(2024, 1, 2, 12, 0, 0, 999999, kst)) == "2024-01-02T03:00:00.999Z"


def test_error_document_read_back_by_botocore() -> None:
    body = encode_error(Ec2Error("InvalidSubnetID.NotFound", "The subnet ID 'subnet-9' does not exist"),
                        "rid-9")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                           b"<Code>InvalidSubnetID.NotFound</Code>")
    parsed = PARSER.parse({"body": body, "headers": {}, "status_code": 400}, None)
    assert parsed["Error"] == {"Code": "InvalidSubnetID.NotFound",
                               "Message": "The subnet ID 'subnet-9' does not exist"}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-9"


# ------------------------------------------------------------------- every operation, generically


def sample(shape: Shape, seen: tuple[str, ...] = ()) -> Any:
    """A value for any shape (recursion cut off), exercising every type the model uses."""
    if shape.name in seen or len(seen) > 6:
        return None
    if isinstance(shape, StructureShape):
        value = {name: v for name, member in shape.members.items()
                 if (v := sample(member, seen + (shape.name,))) is not None}
        return value or None
    if isinstance(shape, ListShape):
        item = sample(shape.member, seen + (shape.name,))
        return None if item is None else [item, item]
    return {"string": shape.enum[0] if getattr(shape, "enum", None) else "x<&>'\" y", "integer": 7, "long": 2**40,
            "boolean": True, "double": 1.5, "float": 0.25, "timestamp": WHEN.replace(microsecond=0),
            "blob": b"\x00blob"}[shape.type_name]


def test_every_operation_round_trips_input_and_output() -> None:
    failures = []
    for action in MODEL.operation_names:
        op = MODEL.operation_model(action)
        try:
            params = sample(op.input_shape) if op.input_shape else None
            if params and decode(action, params) != params:
                failures.append((action, "input"))
            output = sample(op.output_shape) if op.output_shape else None
            if read_back(action, output) != (output or {}):
                failures.append((action, "output"))
        except Exception as error:  # collect, so one report names every broken action
            failures.append((action, repr(error)))
    assert failures == []
