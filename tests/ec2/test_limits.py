"""EC2's limits and failures as ipamd meets them, on the seed's t3.medium nodes."""

import pytest
from botocore.exceptions import ClientError

from tests.ec2.helpers import seed_world


def code_of(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def test_subnet_counts_exactly_what_is_free(ec2):
    _, [subnet, *_], _ = seed_world(ec2)
    # /24: 256 − 5 reserved by AWS − 1 primary address of the node
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == 250


def test_a_fourth_eni_on_t3_medium_is_refused(ec2):
    _, [subnet, *_], [node, *_] = seed_world(ec2)
    for device in (1, 2):
        eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node, DeviceIndex=device)
    fourth = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as err:
        ec2.attach_network_interface(NetworkInterfaceId=fourth, InstanceId=node, DeviceIndex=3)
    assert code_of(err.value) == "AttachmentLimitExceeded"
    assert err.value.response["Error"]["Message"] == "Interface count 4 exceeds the limit for t3.medium"
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[fourth])["NetworkInterfaces"][0]["Status"] == "available"


def test_a_sixth_address_on_one_eni_is_refused(ec2):
    _, [subnet, *_], [node, *_] = seed_world(ec2)
    primary = ec2.describe_instances(InstanceIds=[node])["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]
    eni = primary["NetworkInterfaceId"]
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=5)
    before = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"]
    with pytest.raises(ClientError) as err:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)
    assert code_of(err.value) == "PrivateIpAddressLimitExceeded"
    assert err.value.response["Error"]["Message"] == "Number of private addresses will exceed limit."
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == before


def test_prefixes_share_the_address_slots(ec2):
    _, _, [node, *_] = seed_world(ec2)
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [node]}])
    eni_id = eni["NetworkInterfaces"][0]["NetworkInterfaceId"]
    got = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, Ipv4PrefixCount=3)["AssignedIpv4Prefixes"]
    assert all(int(p["Ipv4Prefix"].split("/")[0].split(".")[-1]) % 16 == 0 for p in got)
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=2)
    with pytest.raises(ClientError) as err:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, Ipv4PrefixCount=1)
    assert code_of(err.value) == "PrivateIpAddressLimitExceeded"


def test_an_exhausted_slash_28_subnet(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/28", AvailabilityZone="ap-northeast-2a")["Subnet"]
    assert subnet["AvailableIpAddressCount"] == 11
    enis = [ec2.create_network_interface(SubnetId=subnet["SubnetId"], SecondaryPrivateIpAddressCount=4)
            for _ in range(2)]
    assert ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 1
    with pytest.raises(ClientError) as err:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=enis[0]["NetworkInterface"]["NetworkInterfaceId"],
                                        SecondaryPrivateIpAddressCount=2)
    assert code_of(err.value) == "InsufficientFreeAddressesInSubnet"
    assert ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 1
    with pytest.raises(ClientError) as err:
        ec2.create_network_interface(SubnetId=subnet["SubnetId"], SecondaryPrivateIpAddressCount=1)
    assert code_of(err.value) == "InsufficientFreeAddressesInSubnet"
    ec2.create_network_interface(SubnetId=subnet["SubnetId"])
    with pytest.raises(ClientError) as err:
        ec2.create_network_interface(SubnetId=subnet["SubnetId"])
    assert code_of(err.value) == "InsufficientFreeAddressesInSubnet"


def test_a_fragmented_subnet_refuses_a_prefix_with_addresses_left(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="ap-northeast-2a")["Subnet"]
    holder = ec2.create_network_interface(SubnetId=subnet["SubnetId"], PrivateIpAddress="10.0.1.20")
    eni = holder["NetworkInterface"]["NetworkInterfaceId"]
    # one address in every /28 block that AWS does not already spoil with its reserved addresses
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni,
                                    PrivateIpAddresses=[f"10.0.1.{16 * b + 5}" for b in range(2, 15)])
    left = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"]
    assert left == 251 - 14
    with pytest.raises(ClientError) as err:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)
    assert code_of(err.value) == "InsufficientCidrBlocks"
    assert err.value.response["Error"]["Message"] == \
        "The specified subnet does not have enough free cidr blocks to satisfy the request."
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)


def test_prefix_reservations_feed_prefixes_first_and_explicit_ones_are_never_auto_assigned(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="ap-northeast-2a")["Subnet"]
    sid = subnet["SubnetId"]
    ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.2.128/26", ReservationType="prefix")
    explicit = ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.2.0/27", ReservationType="explicit")
    eni = ec2.create_network_interface(SubnetId=sid, SecondaryPrivateIpAddressCount=10)["NetworkInterface"]
    addresses = [int(a["PrivateIpAddress"].split(".")[-1]) for a in eni["PrivateIpAddresses"]]
    assert all(32 <= a < 128 or a >= 192 for a in addresses)
    prefixes = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], Ipv4PrefixCount=4)
    assert sorted(p["Ipv4Prefix"] for p in prefixes["AssignedIpv4Prefixes"]) == \
        ["10.0.2.128/28", "10.0.2.144/28", "10.0.2.160/28", "10.0.2.176/28"]
    got = ec2.get_subnet_cidr_reservations(SubnetId=sid)["SubnetIpv4CidrReservations"]
    assert {r["ReservationType"] for r in got} == {"prefix", "explicit"}
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], PrivateIpAddresses=["10.0.2.9"])
    gone = ec2.delete_subnet_cidr_reservation(
        SubnetCidrReservationId=explicit["SubnetCidrReservation"]["SubnetCidrReservationId"])
    assert gone["DeletedSubnetCidrReservation"]["Cidr"] == "10.0.2.0/27"


@pytest.mark.parametrize("call,code", [
    (lambda ec2, s, i: ec2.describe_network_interfaces(NetworkInterfaceIds=["eni-0000000000000000a"]),
     "InvalidNetworkInterfaceID.NotFound"),
    (lambda ec2, s, i: ec2.describe_instances(InstanceIds=["i-0000000000000000a"]), "InvalidInstanceID.NotFound"),
    (lambda ec2, s, i: ec2.create_network_interface(SubnetId="subnet-0000000000000000a"), "InvalidSubnetID.NotFound"),
    (lambda ec2, s, i: ec2.create_network_interface(), "MissingParameter"),
    (lambda ec2, s, i: ec2.assign_private_ip_addresses(NetworkInterfaceId="eni-0000000000000000a",
                                                       SecondaryPrivateIpAddressCount=1),
     "InvalidNetworkInterfaceID.NotFound"),
    (lambda ec2, s, i: ec2.run_instances(ImageId="ami-1", InstanceType="t3.huge", MinCount=1, MaxCount=1, SubnetId=s),
     "InvalidParameterValue"),
])
def test_not_found_and_bad_parameters(ec2, call, code):
    _, [subnet, *_], [node, *_] = seed_world(ec2)
    with pytest.raises(ClientError) as err:
        call(ec2, subnet, node)
    assert code_of(err.value) == code


def test_attach_errors(ec2):
    _, [subnet_a, subnet_b, _], [node_a, *_] = seed_world(ec2)
    eni = ec2.create_network_interface(SubnetId=subnet_a)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node_a, DeviceIndex=1)
    with pytest.raises(ClientError) as err:
        ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node_a, DeviceIndex=2)
    assert code_of(err.value) == "InvalidNetworkInterface.InUse"
    other = ec2.create_network_interface(SubnetId=subnet_a)["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as err:
        ec2.attach_network_interface(NetworkInterfaceId=other, InstanceId=node_a, DeviceIndex=1)
    assert code_of(err.value) == "InvalidParameterValue"
    assert "already has an interface attached at device index '1'" in err.value.response["Error"]["Message"]
    far = ec2.create_network_interface(SubnetId=subnet_b)["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as err:
        ec2.attach_network_interface(NetworkInterfaceId=far, InstanceId=node_a, DeviceIndex=2)
    assert code_of(err.value) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as err:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
    assert code_of(err.value) == "InvalidParameterValue"
    assert "is currently in use" in err.value.response["Error"]["Message"]
    primary = ec2.describe_network_interfaces(Filters=[
        {"Name": "attachment.instance-id", "Values": [node_a]},
        {"Name": "attachment.device-index", "Values": ["0"]}])["NetworkInterfaces"][0]
    with pytest.raises(ClientError) as err:
        ec2.detach_network_interface(AttachmentId=primary["Attachment"]["AttachmentId"])
    assert code_of(err.value) == "OperationNotPermitted"


def test_terminate_deletes_enis_marked_and_detaches_the_rest(ec2):
    _, [subnet, *_], [node, *_] = seed_world(ec2)
    keep = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    drop = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=3)
    drop_id = drop["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=keep, InstanceId=node, DeviceIndex=1)
    attach = ec2.attach_network_interface(NetworkInterfaceId=drop_id, InstanceId=node, DeviceIndex=2)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=drop_id, Attachment={
        "AttachmentId": attach["AttachmentId"], "DeleteOnTermination": True})
    before = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"]
    out = ec2.terminate_instances(InstanceIds=[node])
    assert out["TerminatingInstances"][0]["CurrentState"]["Name"] == "shutting-down"
    remaining = {e["NetworkInterfaceId"]: e for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert drop_id not in remaining
    assert remaining[keep]["Status"] == "available" and "Attachment" not in remaining[keep]
    # the primary ENI (1 address) and the dropped one (4) went back to the subnet
    assert ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"] == before + 5
    state = ec2.describe_instances(InstanceIds=[node])["Reservations"][0]["Instances"][0]["State"]
    assert state == {"Code": 48, "Name": "terminated"}


def test_unassign_gives_addresses_back_and_checks_ownership(ec2):
    _, [subnet, *_], _ = seed_world(ec2)
    eni = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=2)["NetworkInterface"]
    secondary = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"] if not a["Primary"]]
    with pytest.raises(ClientError) as err:
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                          PrivateIpAddresses=["192.168.1.250"])
    assert code_of(err.value) == "InvalidParameterValue"
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], PrivateIpAddresses=secondary)
    again = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert len(again["PrivateIpAddresses"]) == 1


def test_run_instances_that_cannot_finish_leaves_nothing(ec2):
    """/28: 11 addresses; three instances with 1 + 4 addresses each need 15. The third fails, and the
    two launched before it, their ENIs and addresses are taken back (EC2 launches all or none)."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/28", AvailabilityZone="ap-northeast-2a")["Subnet"]
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType="t3.medium", MinCount=3, MaxCount=3,
                          SubnetId=subnet["SubnetId"],
                          NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"],
                                              "SecondaryPrivateIpAddressCount": 4}])
    assert code_of(err.value) == "InsufficientFreeAddressesInSubnet"
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == []
    assert ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 11


def test_a_malformed_primary_address_is_invalid_parameter_value(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/28", AvailabilityZone="ap-northeast-2a")["Subnet"]
    with pytest.raises(ClientError) as err:
        ec2.create_network_interface(SubnetId=subnet["SubnetId"], PrivateIpAddress="10.0.0.x")
    assert code_of(err.value) == "InvalidParameterValue"
    assert ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 11
