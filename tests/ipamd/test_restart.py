"""Kill ipamd at any EC2 call of a scale-up and scale-down, restart it from its checkpoint, and
check that no address is given twice and, once reconciled, nothing leaks in EC2."""

from hypothesis import given, settings
from hypothesis import strategies as st

from minieks.ipamd.datastore import NoAvailableIPError
from minieks.ipamd.eni import IPAMKey, IPAMMetadata
from tests.ipamd.pool_harness import Node

MUTATING = {"create_network_interface", "attach_network_interface", "modify_network_interface_attribute",
            "assign_private_ip_addresses", "unassign_private_ip_addresses", "detach_network_interface",
            "delete_network_interface", "create_tags"}


class Killed(BaseException):
    """The daemon dies: nothing after this point of the call runs."""


class DyingClient:
    """An EC2 client whose process dies right after its n-th mutating call reaches EC2."""

    def __init__(self, inner, die_after: int):
        self.inner = inner
        self.left = die_after

    def __getattr__(self, name):
        method = getattr(self.inner, name)
        if name not in MUTATING:
            return method

        def call(**params):
            result = method(**params)
            self.left -= 1
            if self.left <= 0:
                raise Killed(name)
            return result
        return call


def key(n: int) -> IPAMKey:
    return IPAMKey("aws-cni", f"sandbox-{n}", "eth0")


def workload(node: Node, ctx) -> None:
    """Scale up to 12 pods (a second and third ENI on t3.medium), then down to 2."""
    ctx.node_init()
    for n in range(12):
        try:
            ctx.ds.assign_pod_ipv4_address(key(n), IPAMMetadata("default", f"pod-{n}", 1))
        except NoAvailableIPError:
            pass
        node.cycles(2, ctx)
    for n in range(2, 12):
        try:
            ctx.ds.unassign_pod_ip_address(key(n))
        except Exception:
            pass
    node.cycles(40, ctx)


def assigned(ctx) -> dict[IPAMKey, str]:
    out = {}
    for eni in ctx.ds.enis():
        for cidr in eni.ipv4_cidrs.values():
            for addr in cidr.addresses.values():
                if addr.assigned:
                    assert addr.key not in out, f"{addr.key} holds two addresses"
                    out[addr.key] = addr.address
    return out


@settings(max_examples=30, deadline=None)
@given(kill_at=st.integers(min_value=1, max_value=24), warm_ip=st.sampled_from([None, "2"]))
def test_restart_after_a_kill_loses_nothing_and_leaks_nothing(tmp_path_factory, kill_at, warm_ip):
    backing = str(tmp_path_factory.mktemp("ckpt") / "ipam.json")
    env = {"CLUSTER_NAME": "myeks", **({"WARM_IP_TARGET": warm_ip} if warm_ip else {})}
    node = Node(instance_type="t3.medium", env=env)
    first = node.new_context(client=DyingClient(node.client, kill_at), backing_file=backing)
    try:
        workload(node, first)
        died = False
    except Killed:
        died = True
    before = assigned(first) if first.ds else {}

    second = node.new_context(backing_file=backing)
    second.node_init()
    after = assigned(second)
    # every pod that held an address still holds the same one; no address is held twice
    assert {k: v for k, v in after.items()} == before
    assert len(set(after.values())) == len(after)
    # a new pod gets an address nobody holds
    node.cycles(3, second)
    fresh = second.ds.assign_pod_ipv4_address(key(99), IPAMMetadata("default", "pod-99", 1)).ip
    assert fresh not in after.values()
    # once reconciled and past the leaked-ENI job, EC2 and the datastore agree and nothing is left over
    node.cycles(30, second)
    node.clock.advance(3600)        # the hourly leaked-ENI job deletes ENIs orphaned by the kill
    node.cycles(30, second)
    assert node.eni_view() == node.datastore_view(second)
    stray = node.client.describe_network_interfaces(Filters=[
        {"Name": "status", "Values": ["available"]},
        {"Name": "tag-key", "Values": ["node.k8s.amazonaws.com/instance_id"]}])["NetworkInterfaces"]
    assert stray == []
    stats = second.ds.ip_stats()
    per_eni = second.limits.max_ips_per_eni
    assert stats.total_ips - stats.assigned_ips <= (2 if warm_ip else 2 * per_eni)
    assert died == (kill_at <= full_run_mutations(env))


_FULL_RUNS: dict[tuple, int] = {}


def full_run_mutations(env: dict) -> int:
    """How many mutating EC2 calls the workload makes when nothing dies."""
    marker = tuple(sorted(env.items()))
    if marker not in _FULL_RUNS:
        node = Node(instance_type="t3.medium", env=env)
        client = DyingClient(node.client, 10 ** 9)
        workload(node, node.new_context(client=client))
        _FULL_RUNS[marker] = 10 ** 9 - client.left
    return _FULL_RUNS[marker]
