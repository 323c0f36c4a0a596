"""Keeping ipamd's datastore true to EC2 (nodeIPPoolReconcile) and deleting ENIs the CNI leaked.

The reconcile runs only when the pool has been idle for 60 s: ENIs attached behind ipamd's back
are adopted, ENIs gone are dropped (force), and each ENI's addresses and prefixes are made to
match EC2, except those ipamd released less than 60 s ago (IMDS lags on AWS).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from minieks.ipamd import decisions as d
from minieks.ipamd.awsutils import TAG_CREATED_AT
from minieks.ipamd.datastore import DatastoreError

if TYPE_CHECKING:
    from minieks.ipamd.awsutils import EniInfo
    from minieks.ipamd.context import IpamContext

log = logging.getLogger("ipamd")

ENI_DELETE_COOLDOWN = 300.0   # leaked ENIs younger than 5 minutes are left alone


def _count(ctx: IpamContext, fn: str) -> None:
    ctx.reconcile_counts[fn] = ctx.reconcile_counts.get(fn, 0) + 1
    if ctx.metrics:
        ctx.metrics.reconcile(fn)


def node_ip_pool_reconcile(ctx: IpamContext, interval: float) -> None:
    if ctx.clock.now() - ctx.last_node_ip_pool_action <= interval:
        return
    try:
        attached = [e for e in ctx.metadata.attached_enis() if e.network_card == 0 and ctx._is_managed(e)]
    except ClientError as err:
        ctx.error("nodeIPPoolReconcile", f"Failed to call EC2 to describe ENIs, aborting reconcile: {err}")
        return
    known = {e.id for e in ctx.ds.enis()}
    for eni in attached:
        if eni.id not in known:
            log.info("Reconcile and add a new ENI %s", eni.id)
            try:
                ctx.aws.tag_eni(eni.id, eni.tags)
            except ClientError as err:
                log.warning("Failed to tag ENI %s: %s", eni.id, err)
            ctx.setup_eni(eni)
            _count(ctx, "eniReconcileAdd")
            continue
        if eni.is_primary and ctx.config.custom_network_cfg:
            continue
        _reconcile_cidrs(ctx, eni, prefixes=False)
        _reconcile_cidrs(ctx, eni, prefixes=True)
    attached_ids = {e.id for e in attached}
    for eni_id in known - attached_ids:
        log.info("Reconcile and delete detached ENI %s", eni_id)
        try:
            ctx.ds.remove_eni(eni_id, force=True)
        except DatastoreError as err:
            log.error("IP pool reconcile: Failed to delete ENI %s: %s", eni_id, err)
            continue
        primary_ip = ctx.primary_ips.pop(eni_id, None)
        if primary_ip:
            ctx.network.remove_eni_rules(primary_ip)
        _count(ctx, "eniReconcileDel")
        ctx.note("reconcile", f"{eni_id} is no longer attached: dropped from the datastore")
    ctx.last_node_ip_pool_action = ctx.clock.now()


def _reconcile_cidrs(ctx: IpamContext, eni: EniInfo, prefixes: bool) -> None:
    """Make one ENI's /32s (or /28s) in the datastore match what EC2 lists for it."""
    have = ctx.ds.eni_cidrs(eni.id, prefixes=prefixes)
    if prefixes:
        wanted = list(eni.prefixes)
        if d.prefix_similar(have, wanted):
            return
    else:
        wanted = [f"{ip}/32" for ip in eni.secondary_ips]
        if d.ips_similar([c[:-3] for c in have], [(eni.primary_ip, True)] + [(ip, False) for ip in eni.secondary_ips]):
            return
    for cidr in wanted:
        key = cidr if prefixes else cidr[:-3]
        found, cooling = ctx.reconcile_cooldown.recently_freed(key)
        if cooling:
            continue
        if found:
            ctx.reconcile_cooldown.remove(key)
        if cidr not in have:
            ctx._add_cidr(eni.id, cidr, prefix=prefixes)
            _count(ctx, "eniDataStorePoolReconcileAdd")
    for cidr in set(have) - set(wanted):
        try:
            ctx.ds.del_ipv4_cidr(eni.id, cidr, force=True)
        except DatastoreError as err:
            log.error("Failed to reconcile %s on %s: %s", cidr, eni.id, err)
            continue
        _count(ctx, "eniIPPoolReconcileDel")
        ctx.note("reconcile", f"{cidr} is no longer on {eni.id} in EC2: removed (pods on it lose their address)")


def cleanup_leaked_enis(ctx: IpamContext) -> None:
    """The hourly job: delete available `aws-K8S-` ENIs tagged by this CNI, older than 5 minutes."""
    try:
        leaked = ctx.aws.leaked_enis(ctx.instance.vpc_id)
    except ClientError as err:
        log.warning("Unable to describe leaked ENIs: %s", err)
        return
    now = ctx.aws.utc_now()
    for eni in leaked:
        tags = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
        eni_id = eni["NetworkInterfaceId"]
        created = tags.get(TAG_CREATED_AT)
        try:
            if not created:
                ctx.aws.set_tag(eni_id, TAG_CREATED_AT, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
                continue
            age = (now - datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc))
            if age.total_seconds() < ENI_DELETE_COOLDOWN:
                continue
            ctx.aws.delete_eni(eni_id)
            log.info("Deleted leaked ENI %s", eni_id)
            ctx.note("leaked-eni", f"deleted leaked ENI {eni_id}")
        except ClientError as err:
            log.warning("Failed to clean up leaked ENI %s: %s", eni_id, err)
