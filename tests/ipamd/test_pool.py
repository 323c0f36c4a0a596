"""The pool loop against the in-process EC2: upstream's increase-pool and reconcile vectors, the
worked examples of the VPC CNI docs, release spacing, ENI lifetime, the max-pods gate and the
insufficient-CIDR pause."""

from pathlib import Path

import pytest
import yaml

from minieks.ipamd import pool
from minieks.ipamd.eni import IPAMKey, IPAMMetadata
from minieks.ipamd.ports import EniConfig, StaticCluster
from minieks.ipamd.simulate import simulate
from tests.ipamd.pool_harness import Node, Recorder

VECTORS = yaml.safe_load((Path(__file__).resolve().parents[1] / "data/conformance-vectors.yaml").read_text())
INCREASE = {v["id"]: v for v in VECTORS["increase_pool"]}

# m5.xlarge: 4 ENIs × 15 IPv4 → 14 IPs (or 14 prefixes) per ENI, as the vectors' max_ips_per_eni
CUSTOM = {"AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true"}


def pod(ctx, n: int):
    return ctx.ds.assign_pod_ipv4_address(IPAMKey("aws-cni", f"c{n}", "eth0"), IPAMMetadata("default", f"p{n}", 1))


def unpod(ctx, n: int):
    return ctx.ds.unassign_pod_ip_address(IPAMKey("aws-cni", f"c{n}", "eth0"))


def increase_on(node: Node, empty_datastore: bool):
    node.ctx.prepare()
    if not empty_datastore:
        primary = node.ctx.metadata.attached_enis()[0]
        node.ctx.setup_eni(primary)
    recorder = Recorder(node.ctx)
    pool.increase(node.ctx)
    return recorder.calls


def comparable(calls):
    return [{k: v for k, v in c.items() if k in ("api", "count", "network_card")} for c in calls]


@pytest.mark.parametrize("vector_id,env", [
    ("alloc-eni-warm-eni", {}),
    ("warm-ip-target-new-eni", {"WARM_IP_TARGET": "3"}),
    ("pd-new-eni-one-prefix", {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}),
])
def test_increase_pool_new_eni_vectors(vector_id, env):
    node = Node(env=env)
    calls = increase_on(node, empty_datastore=True)
    expected = [c for c in INCREASE[vector_id]["expected_calls"] if c["api"] == "AllocENI"]
    assert comparable(calls) == comparable(expected)
    assert calls[0]["subnet"] == node.subnet            # "" upstream: the node's own subnet
    assert len(node.ctx.ds.enis()) == 1                 # the new ENI is set up in the datastore


@pytest.mark.parametrize("vector_id,pd", [("alloc-eni-custom-networking", False), ("pd-custom-networking", True)])
def test_increase_pool_custom_networking_vectors(vector_id, pd):
    env = dict(CUSTOM, **({"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"} if pd else {}))
    node = Node(env=env)
    custom_subnet = node.client.create_subnet(VpcId=node.vpc, CidrBlock="10.0.64.0/20",
                                              AvailabilityZone="ap-northeast-2a")["Subnet"]["SubnetId"]
    node.cluster.eni_configs["az1"] = EniConfig("az1", custom_subnet, ("sg-0000000000000001", "sg-0000000000000002"))
    node.cluster.eni_config_name = "az1"
    calls = increase_on(node, empty_datastore=False)
    expected = INCREASE[vector_id]["expected_calls"]
    assert comparable(calls) == comparable(expected)
    assert calls[0]["subnet"] == custom_subnet
    assert calls[0]["security_groups"] == ["sg-0000000000000001", "sg-0000000000000002"]


@pytest.mark.parametrize("vector_id,manage", [("alloc-none-unschedulable", None), ("alloc-unschedulable-allowed", "true")])
def test_increase_pool_on_unschedulable_nodes(vector_id, manage):
    env = {"AWS_MANAGE_ENIS_NON_SCHEDULABLE": manage} if manage else {}
    node = Node(env=env, cluster=StaticCluster(110, is_unschedulable=True))
    calls = increase_on(node, empty_datastore=True)
    expected = INCREASE[vector_id]["expected_calls"]
    assert [c["api"] for c in calls] == [c["api"] for c in expected]


@pytest.mark.parametrize("vector_id,env,api", [
    ("subnet-discovery-insufficient-then-new-eni", {}, "AssignPrivateIpAddresses"),
    ("pd-subnet-discovery", {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
     "AssignPrivateIpAddresses(Ipv4PrefixCount)"),
])
def test_increase_pool_subnet_discovery_vectors(vector_id, env, api):
    node = Node(env=env)
    node.ec2.faults.add("AssignPrivateIpAddresses", "InsufficientFreeAddressesInSubnet",
                        "The specified subnet does not have enough free addresses to satisfy the request.", count=2)
    calls = increase_on(node, empty_datastore=False)
    assert comparable(calls) == comparable(INCREASE[vector_id]["expected_calls"])


def test_node_ip_pool_reconcile_vector():
    node = Node(env={"WARM_IP_TARGET": "2"})
    ctx = node.ctx
    ctx.prepare()
    primary = ctx.metadata.attached_enis()[0]
    ctx.setup_eni(primary)
    # step 1: two secondary IPs appear on the primary ENI behind ipamd's back
    node.client.assign_private_ip_addresses(NetworkInterfaceId=primary.id, SecondaryPrivateIpAddressCount=2)
    node.clock.advance(61)
    from minieks.ipamd.reconcile import node_ip_pool_reconcile
    node_ip_pool_reconcile(ctx, 60)
    assert (len(ctx.ds.enis()), ctx.ds.ip_stats().total_ips) == (1, 2)
    # step 2: they go away in EC2
    ips = node.eni_view()[primary.id][0]
    node.client.unassign_private_ip_addresses(NetworkInterfaceId=primary.id, PrivateIpAddresses=ips)
    node.clock.advance(61)
    node_ip_pool_reconcile(ctx, 60)
    assert (len(ctx.ds.enis()), ctx.ds.ip_stats().total_ips) == (1, 0)
    # step 3: a new ENI with one IP is attached behind ipamd's back
    eni = node.client.create_network_interface(SubnetId=node.subnet, SecondaryPrivateIpAddressCount=1)
    eni_id = eni["NetworkInterface"]["NetworkInterfaceId"]
    attachment = node.client.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=node.instance_id,
                                                      DeviceIndex=1)["AttachmentId"]
    node.clock.advance(61)
    node_ip_pool_reconcile(ctx, 60)
    assert (len(ctx.ds.enis()), ctx.ds.ip_stats().total_ips) == (2, 1)
    assert ctx.reconcile_counts["eniReconcileAdd"] == 1
    # step 4: it is detached: force-removed from the datastore
    node.client.detach_network_interface(AttachmentId=attachment)
    node.clock.advance(61)
    node_ip_pool_reconcile(ctx, 60)
    assert (len(ctx.ds.enis()), ctx.ds.ip_stats().total_ips) == (1, 0)


def test_reconcile_waits_while_the_pool_was_busy():
    node = Node(env={"WARM_IP_TARGET": "1"})
    node.ctx.node_init()
    primary = node.ctx.metadata.attached_enis()[0]
    node.client.assign_private_ip_addresses(NetworkInterfaceId=primary.id, SecondaryPrivateIpAddressCount=1)
    from minieks.ipamd.reconcile import node_ip_pool_reconcile
    node.ctx.last_node_ip_pool_action = node.clock.now()
    node_ip_pool_reconcile(node.ctx, 60)
    assert node.datastore_view()[primary.id] != node.eni_view()[primary.id]
    node.clock.advance(61)
    node_ip_pool_reconcile(node.ctx, 60)
    assert node.datastore_view()[primary.id] == node.eni_view()[primary.id]


# ------------------------------------------------------------------ the docs' worked examples
def test_doc_t3_small_warm_eni_5_pods():
    r = simulate("t3.small", 5, warm_eni_target=1)
    assert (r.enis, r.secondary_ips, r.unused_ips, r.pods_failed) == (3, 9, 4, 0)


@pytest.mark.parametrize("pods,enis,ips", [(0, 1, 29), (1, 2, 58), (29, 2, 58), (30, 3, 87), (58, 3, 87)])
def test_readme_m4_4xlarge_warm_pool(pods, enis, ips):
    """The README's prose says 2 ENIs for 0–29 pods; the code (and so minieks) keeps one ENI's worth
    of free addresses, which the primary ENI alone gives while no pod runs."""
    r = simulate("m4.4xlarge", pods)
    assert (r.enis, r.secondary_ips) == (enis, ips)


def test_prefix_doc_row_that_the_code_resolves():
    r = simulate("t3.small", 0, prefix_delegation=True, warm_ip_target=7, minimum_ip_target=20)
    assert (r.prefixes, r.unused_ips) == (2, 32)


def test_warm_ip_target_keeps_exactly_the_warm_ips():
    r = simulate("t3.medium", 7, warm_ip_target=2)
    assert r.unused_ips == 2 and r.secondary_ips == 9
    r = simulate("t3.medium", 7, warm_ip_target=2, minimum_ip_target=12)
    assert r.secondary_ips == 12


def test_max_pods_stops_the_pool_growing():
    # m5.xlarge: 14 addresses per ENI. 18 pods leave 10 free (< 14), which would call for a third ENI,
    # but the pool already holds 28 ≥ max pods 20 addresses.
    r = simulate("m5.xlarge", 30, max_pods=20)
    assert (r.enis, r.secondary_ips, r.pods, r.pods_pending, r.pods_failed) == (2, 28, 18, 12, 0)
    assert simulate("m5.xlarge", 18).enis == 3


# ------------------------------------------------------------------------ scale down, timing
def test_scale_down_releases_ips_30s_apart_and_frees_the_eni_after_its_lifetime():
    node = Node(instance_type="t3.medium", env={"WARM_IP_TARGET": "1"})
    node.ctx.node_init()
    for n in range(9):
        pod(node.ctx, n)
        node.cycles(2)
    assert len(node.ctx.ds.enis()) == 2 and node.ctx.ds.ip_stats().total_ips == 10
    for n in range(4):
        unpod(node.ctx, n)
    node.cycles(1)
    first = node.ctx.last_decrease
    assert node.ctx.ds.ip_stats().total_ips == 6          # 5 pods + 1 warm
    for n in range(4, 9):
        unpod(node.ctx, n)
    while node.clock.now() - first <= 30:
        node.cycles(1)
        if node.clock.now() - first <= 30:
            assert node.ctx.ds.ip_stats().total_ips == 6  # no second release within 30 s
    node.cycles(2)
    assert node.ctx.last_decrease - first > 30
    assert node.ctx.ds.ip_stats().total_ips == 1
    node.cycles(20)                                        # the emptied ENI goes once it is 60 s old
    assert len(node.ctx.ds.enis()) == 1
    assert node.eni_view() == node.datastore_view()
    assert node.ec2.calls.get("DeleteNetworkInterface") == 1


def test_insufficient_cidr_error_pauses_growth_for_two_minutes():
    node = Node(instance_type="t3.medium")
    node.ctx.node_init()
    for n in range(5):
        pod(node.ctx, n)
    node.ec2.faults.add("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet",
                        "The specified subnet does not have enough free addresses to satisfy the request.", count=1)
    node.cycles(1)
    failed_at = node.ctx.last_insufficient_cidr_error
    assert failed_at is not None and any(a.kind == "subnet-full" for a in node.ctx.activity)
    creates = node.ec2.calls.get("CreateNetworkInterface", 0)
    while node.clock.now() - failed_at <= 120:
        node.cycles(1)
        if node.clock.now() - failed_at <= 120:
            assert node.ec2.calls.get("CreateNetworkInterface", 0) == creates
    node.cycles(2)
    assert node.ec2.calls["CreateNetworkInterface"] == creates + 1
    assert len(node.ctx.ds.enis()) == 2


def test_subnet_discovery_moves_to_a_tagged_subnet_when_the_node_subnet_is_full():
    node = Node(instance_type="t3.medium", subnet_cidr="10.0.0.0/28",
                extra_subnets=(("10.0.32.0/20", {"kubernetes.io/role/cni": "1"}),
                               ("10.0.48.0/20", {})))
    node.ctx.node_init()
    for n in range(5):
        pod(node.ctx, n)
    node.cycles(3)
    enis = node.client.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [node.instance_id]}])["NetworkInterfaces"]
    subnets = {e["Attachment"]["DeviceIndex"]: e["SubnetId"] for e in enis}
    assert subnets[1] == node.extra_subnets[0]


def test_leaked_enis_are_deleted_after_five_minutes():
    node = Node(env={"CLUSTER_NAME": "myeks"})
    node.ctx.node_init()
    leaked = node.client.create_network_interface(
        SubnetId=node.subnet, Description=f"aws-K8S-{node.instance_id}",
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": [
            {"Key": "node.k8s.amazonaws.com/instance_id", "Value": node.instance_id},
            {"Key": "cluster.k8s.amazonaws.com/name", "Value": "myeks"}]}])["NetworkInterface"]["NetworkInterfaceId"]
    node.cycles(70)              # past the random start-up delay (< 300 s): the tag gets a createdAt
    tags = {t["Key"] for t in node.client.describe_network_interfaces(
        NetworkInterfaceIds=[leaked])["NetworkInterfaces"][0]["TagSet"]}
    assert "node.k8s.amazonaws.com/createdAt" in tags
    node.clock.advance(3600)
    node.cycles(2)
    remaining = {e["NetworkInterfaceId"] for e in node.client.describe_network_interfaces()["NetworkInterfaces"]}
    assert leaked not in remaining
