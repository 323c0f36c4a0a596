"""A small seeded EC2 world used by the EC2 tests: a VPC, subnets and instances."""

from __future__ import annotations


def seed_world(ec2, cidrs=("192.168.1.0/24", "192.168.2.0/24", "192.168.3.0/24"), instance_type="t3.medium"):
    """The seed lab's VPC: one subnet per zone and one instance per subnet. `ec2` is any boto3-style client."""
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "myeks-VPC"}]}])
    vpc_id = vpc["Vpc"]["VpcId"]
    subnets, instances = [], []
    for n, (cidr, zone) in enumerate(zip(cidrs, "abc"), start=1):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"ap-northeast-2{zone}")["Subnet"]
        subnets.append(subnet["SubnetId"])
        run = ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType=instance_type, MinCount=1, MaxCount=1,
                                SubnetId=subnet["SubnetId"],
                                TagSpecifications=[{"ResourceType": "instance",
                                                    "Tags": [{"Key": "Name", "Value": f"myeks-ng1-Node-{n}"}]}])
        instances.append(run["Instances"][0]["InstanceId"])
    return vpc_id, subnets, instances
