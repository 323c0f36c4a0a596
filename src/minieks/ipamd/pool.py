"""Growing and shrinking the warm pool (upstream's increaseDatastorePool, decreaseDatastorePool,
tryFreeENI, tryAssignIPs/Prefixes, tryAllocateENI), one EC2 action per cycle at most.

Functions of an IpamContext; the numbers come from decisions.py, the EC2 calls from awsutils.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from minieks.ipamd import decisions as d
from minieks.ipamd.awsutils import error_code
from minieks.ipamd.datastore import DatastoreError

if TYPE_CHECKING:
    from minieks.ipamd.context import IpamContext

log = logging.getLogger("ipamd")

SUBNET_FULL_MESSAGE = ("Unable to attach IPs/Prefixes for the ENI, subnet doesn't seem to have enough IPs/Prefixes. "
                       "Consider using new subnet or carve a reserved range using create-subnet-cidr-reservation")
DECREASE_IP_POOL_INTERVAL = 30.0     # seconds between two releases (decreaseIPPoolInterval)
CNI_ROLE_TAG = "kubernetes.io/role/cni"
CLUSTER_TAG_PREFIX = "cni.networking.k8s.aws/cluster/"


def too_low(ctx: IpamContext) -> bool:
    return d.is_pool_too_low(ctx.pool_state(), ctx.targets, ctx.limits, ctx.max_pods)


def update_if_required(ctx: IpamContext) -> None:
    """updateIPPoolIfRequired for network card 0."""
    _release_due_excluded_cidrs(ctx)
    if ctx.mode_release_pending:
        ctx.mode_release_pending = False
        release_other_mode(ctx)
    state = ctx.pool_state()
    scaled_down = False
    if d.is_pool_too_low(state, ctx.targets, ctx.limits, ctx.max_pods):
        increase(ctx)
    elif d.is_pool_too_high(state, ctx.targets) and ctx.clock.now() - ctx.last_decrease > DECREASE_IP_POOL_INTERVAL:
        scaled_down = True
        decrease(ctx)
    state = ctx.pool_state()
    if d.should_remove_extra_enis(state, ctx.targets, ctx.limits, ctx.ds.check_freeable_eni_exists()):
        try_free_eni(ctx)
    if scaled_down:
        ctx.last_decrease = ctx.last_node_ip_pool_action = ctx.clock.now()


# ------------------------------------------------------------------------------------ increase
def increase(ctx: IpamContext, raise_errors: bool = False) -> None:
    if ctx.terminating:
        return
    if ctx.cluster.unschedulable() and not ctx.config.manage_enis_non_schedulable:
        return
    now = ctx.clock.now()
    if d.in_insufficient_cidr_cooldown(now, ctx.last_insufficient_cidr_error):
        log.debug("Recently we had InsufficientCidr error hence will wait for 2m0s before retrying")
        return
    try:
        increased = _try_assign(ctx)
    except ClientError as err:
        if d.is_insufficient_cidr_error(error_code(err)):
            log.error(SUBNET_FULL_MESSAGE)
            ctx.note("subnet-full", f"{error_code(err)}: {SUBNET_FULL_MESSAGE}")
            ctx.last_insufficient_cidr_error = now
            return
        ctx.error("increaseIPPoolAllocIPAddressesFailed", f"Failed to increase pool size: {err}")
        if raise_errors:
            raise
        return
    if increased:
        ctx.last_node_ip_pool_action = ctx.clock.now()
    elif _has_room_for_eni(ctx):
        _try_allocate_eni(ctx)
    else:
        log.debug("Skipping ENI allocation as the max ENI limit is already reached")


def _has_room_for_eni(ctx: IpamContext) -> bool:
    enis = ctx.ds.enis()
    excluded = sum(1 for e in enis if e.excluded_for_pod_ips)
    return d.has_room_for_eni(len(enis), ctx.limits.max_eni, unmanaged=ctx.unmanaged_enis, excluded=excluded)


def _try_assign(ctx: IpamContext) -> bool:
    """tryAssignIPs / tryAssignPrefixes: top up one ENI that has room (at most one per cycle)."""
    pool = ctx.pool_state()                    # nothing changes it before the EC2 call below
    state = d.datastore_target_state(pool, ctx.targets)
    if state.enabled and state.short == 0:
        return False
    if ctx.pd:
        want, per_eni, call, kind = (d.prefixes_needed(pool, ctx.targets), ctx.limits.max_prefixes_per_eni,
                                     ctx.aws.alloc_prefixes, "prefixes")
    else:
        want, per_eni, call, kind = (d.ips_to_assign(pool, ctx.targets, ctx.limits),
                                     ctx.limits.max_ips_per_eni, ctx.aws.alloc_ips, "secondary IPs")
    for eni in ctx.ds.allocatable_enis(per_eni, skip_primary=ctx.config.custom_network_cfg):
        n = min(per_eni - len(eni.ipv4_cidrs), want)
        log.info("Trying to allocate %d IP addresses on ENI %s", n, eni.id)
        got = _assign_with_retry(ctx, eni.id, n, call, want_prefixes=ctx.pd)
        if got is None:
            continue
        for cidr in got:
            ctx._add_cidr(eni.id, cidr if ctx.pd else f"{cidr}/32", prefix=ctx.pd)
        ctx.note("assign", f"{len(got)} {kind} on {eni.id}")
        return True
    return False


def _assign_with_retry(ctx: IpamContext, eni_id: str, n: int, call, want_prefixes: bool) -> list[str] | None:
    """One AssignPrivateIpAddresses; on failure one more try for a single address or prefix.

    Returns None to mean "try the next ENI" (subnet discovery and the subnet is full)."""
    try:
        return call(eni_id, n)
    except ClientError as err:
        if d.is_ip_limit_exceeded_error(error_code(err)):
            ips, prefixes = ctx.aws.eni_addresses(eni_id)   # EC2 is the truth: learn what is there
            return list(prefixes if want_prefixes else ips)
        log.warning("failed to allocate all available IP addresses on ENI %s, err: %s", eni_id, err)
    try:
        return call(eni_id, 1)
    except ClientError as err:
        if ctx.config.enable_subnet_discovery and d.is_insufficient_cidr_error(error_code(err)):
            return None
        raise


def _candidate_subnets(ctx: IpamContext) -> tuple[list[str], tuple[str, ...]]:
    """Where a new ENI may go, best first, and its security groups (§3.5 subnet choice)."""
    info = ctx.instance
    if ctx.config.custom_network_cfg:
        config = ctx.cluster.eni_config()
        if config is None:
            raise _no_subnet("eniconfig: eniconfig is not available")
        return [config.subnet], config.security_groups or info.security_groups
    if not ctx.config.enable_subnet_discovery:
        node = ctx.aws.client.describe_subnets(SubnetIds=[info.subnet_id])["Subnets"][0]
        if _tags(node).get(CNI_ROLE_TAG) == "0":
            raise _no_subnet("primary subnet is tagged with kubernetes.io/role/cni=0 and subnet discovery is "
                             "disabled - no valid subnets available for ENI creation")
        return [info.subnet_id], info.security_groups
    try:
        subnets = ctx.aws.subnets_in_zone(info.vpc_id, info.availability_zone)
    except ClientError:
        return [info.subnet_id], info.security_groups
    chosen = []
    for subnet in sorted(subnets, key=lambda s: (-s["AvailableIpAddressCount"], s["SubnetId"])):
        tags = _tags(subnet)
        if subnet["SubnetId"] == info.subnet_id:
            if tags.get(CNI_ROLE_TAG) != "0":
                chosen.append(subnet["SubnetId"])
            continue
        if tags.get(CNI_ROLE_TAG, "0") == "0":
            continue
        clusters = [k[len(CLUSTER_TAG_PREFIX):] for k in tags if k.startswith(CLUSTER_TAG_PREFIX)]
        if ctx.config.cluster_name and clusters and ctx.config.cluster_name not in clusters:
            continue
        chosen.append(subnet["SubnetId"])
    if not chosen:
        raise _no_subnet("no valid subnets available for ENI creation - all subnets are either not tagged or "
                         "tagged with kubernetes.io/role/cni=0")
    return chosen, info.security_groups


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _no_subnet(message: str) -> ClientError:
    return ClientError({"Error": {"Code": "NoValidSubnet", "Message": message}}, "CreateNetworkInterface")


def _try_allocate_eni(ctx: IpamContext) -> None:
    n = d.eni_resources_to_allocate(ctx.pool_state(), ctx.targets, ctx.limits)
    if n <= 0:
        log.debug("Did not allocate ENI since IPs/Prefixes needed were not greater than 0")
        return
    try:
        subnets, groups = _candidate_subnets(ctx)
        eni_id = None
        for position, subnet in enumerate(subnets):
            try:
                eni_id = ctx.aws.alloc_eni(subnet, groups, n, ctx.pd)
                break
            except ClientError as err:
                if not d.is_insufficient_cidr_error(error_code(err)) or position == len(subnets) - 1:
                    raise
    except ClientError as err:
        ctx.error("increaseIPPoolAllocENI", f"Failed to allocate {n} IP addresses on an ENI: {err}")
        if d.is_insufficient_cidr_error(error_code(err)):
            log.error(SUBNET_FULL_MESSAGE)
            ctx.note("subnet-full", f"{error_code(err)}: {SUBNET_FULL_MESSAGE}")
            ctx.last_insufficient_cidr_error = ctx.clock.now()
        return
    info = next((e for e in ctx.metadata.attached_enis() if e.id == eni_id), None)
    if info is None:
        ctx.error("increaseIPPoolAllocENI", f"ENI {eni_id} did not show up attached")
        return
    ctx.setup_eni(info)
    ctx.note("eni-attached", f"{eni_id} at device {info.device_number} with {n} "
                             f"{'prefixes' if ctx.pd else 'IPs'}")
    ctx.last_node_ip_pool_action = ctx.clock.now()


# ------------------------------------------------------------------------------------ decrease
def decrease(ctx: IpamContext) -> None:
    """decreaseDatastorePool → tryUnassignCidrsFromAll: release `over` unused CIDRs to EC2.

    Upstream walks ENIs in Go map order (random); here the newest ENI (highest device) goes first,
    so secondary ENIs empty out and can be freed, rather than the primary ENI being drained."""
    over = d.over_to_release(ctx.pool_state(), ctx.targets)
    for eni in reversed(ctx.ds.enis()):
        if over <= 0:
            break
        freeable = ctx.ds.find_freeable_cidrs(eni.id)[:over]
        deleted = []
        for cidr in freeable:
            try:
                ctx.ds.del_ipv4_cidr(eni.id, cidr, force=False)
                deleted.append(cidr)
            except DatastoreError as err:
                log.warning("Failed to delete %s from datastore: %s", cidr, err)
        if not deleted:
            continue
        _release(ctx, eni.id, deleted)
        over -= len(deleted)


def _release(ctx: IpamContext, eni_id: str, cidrs: list[str]) -> None:
    prefixes = [c for c in cidrs if not c.endswith("/32")]
    ips = [c[:-3] for c in cidrs if c.endswith("/32")]
    try:
        ctx.aws.dealloc_prefixes(eni_id, prefixes)
        ctx.aws.dealloc_ips(eni_id, ips)
    except ClientError as err:
        ctx.error("decreaseIPPool", f"Failed to release {cidrs} from {eni_id}: {err}")
        return
    ctx.reconcile_cooldown.add(ips + prefixes)
    ctx.note("release", f"{len(cidrs)} {'prefixes' if prefixes else 'IPs'} from {eni_id}")


def try_free_eni(ctx: IpamContext) -> None:
    if ctx.terminating or (ctx.cluster.unschedulable() and not ctx.config.manage_enis_non_schedulable):
        return
    t = ctx.targets
    eni_id = ctx.ds.remove_unused_eni(t.warm_ip_target, t.minimum_ip_target, t.warm_prefix_target)
    if not eni_id:
        return
    try:
        ctx.aws.free_eni(eni_id)
    except ClientError as err:
        ctx.error("decreaseIPPoolFreeENIFailed", f"Failed to free ENI {eni_id}: {err}")
        return
    primary_ip = ctx.primary_ips.pop(eni_id, None)
    if primary_ip:
        ctx.network.remove_eni_rules(primary_ip)
    ctx.note("eni-freed", f"{eni_id} freed")


def release_other_mode(ctx: IpamContext) -> None:
    """nodeInit mode-switch clean-up: PD on frees unused /32s; PD off frees unused prefixes."""
    if ctx.config.provisioning_disabled:
        return
    for eni in ctx.ds.enis():
        if ctx.pd:
            cidrs = [f"{ip}/32" for ip in ctx.ds.freeable_ips(eni.id)]
        else:
            cidrs = [c for c in ctx.ds.freeable_prefixes(eni.id) if ":" not in c]
        for cidr in cidrs:
            ctx.ds.del_ipv4_cidr(eni.id, cidr, force=False)
        if cidrs:
            _release(ctx, eni.id, cidrs)


def _release_due_excluded_cidrs(ctx: IpamContext) -> None:
    for eni_id, cidr in ctx.ds.take_due_excluded_cidr_releases():
        try:
            ctx.ds.del_ipv4_cidr(eni_id, cidr, force=False)
        except DatastoreError:
            continue
        _release(ctx, eni_id, [cidr])
