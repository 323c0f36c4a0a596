"""Collecting the Facts about one pod from a running cluster: the pod, its events, its node and
every node's pod count from the Kubernetes API; the aws-node environment; the node's ipamd
(node_probe); EC2's view of the node's subnet and ENIs. Nothing here decides anything."""

from __future__ import annotations

import json
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from minieks.aws import instance_types
from minieks.aws.max_pods import MaxPodsError, MaxPodsOptions, calculate
from minieks.explain.facts import Ec2Facts, Facts, NodeUsage, TypeLimits
from minieks.explain.kubeapi import KubeClient, KubeUnreachable
from minieks.explain.node_probe import probe
from minieks.fabric.lab import state_dir
from minieks.usage import UsageError


class ClusterNotRunning(UsageError):
    pass


def _endpoints(cluster: str) -> dict:
    path = state_dir(cluster) / "endpoints.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ClusterNotRunning(f"no cluster named {cluster!r} is running here (no {path})") from None


def _registry(cluster: str) -> dict:
    try:
        return json.loads((state_dir(cluster) / "lab.json").read_text())
    except (OSError, ValueError):
        return {}


def type_limits(name: str) -> TypeLimits | None:
    t = instance_types.catalog().get(name)
    if t is None:
        return None
    pd = None
    if t.supports_prefix_delegation:
        try:
            pd = calculate(t, MaxPodsOptions(prefix_delegation=True)).max_pods
        except MaxPodsError:
            pd = None
    return TypeLimits(name, t.max_enis, t.ipv4_per_eni, pd)


def _pod_active(pod: dict) -> bool:
    return (not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def _node_usage(kube: KubeClient) -> tuple[list[NodeUsage], dict[str, dict]]:
    nodes = kube.get("/api/v1/nodes").get("items") or []
    pods = kube.get("/api/v1/pods").get("items") or []
    bound: dict[str, int] = {}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and _pod_active(p):
            bound[node] = bound.get(node, 0) + 1
    usage = []
    for n in nodes:
        status = n.get("status") or {}
        pods_cap = (status.get("allocatable") or {}).get("pods") or (status.get("capacity") or {}).get("pods") or 0
        labels = n["metadata"].get("labels") or {}
        usage.append(NodeUsage(n["metadata"]["name"], bound.get(n["metadata"]["name"], 0), int(pods_cap),
                               labels.get("node.kubernetes.io/instance-type", ""), _ready(n)))
    return usage, {n["metadata"]["name"]: n for n in nodes}


def _cni_env(kube: KubeClient, registry: dict, instance_id: str | None) -> dict[str, str]:
    """The aws-node DaemonSet's env (what an EKS user would read), else the lab's record."""
    try:
        ds = kube.get("/apis/apps/v1/namespaces/kube-system/daemonsets/aws-node")
        containers = ds["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for c in containers if c.get("name") == "aws-node"
               for e in c.get("env") or [] if "value" in e}
        if env:
            return env
    except Exception:  # noqa: BLE001 - the lab's record is the fallback
        pass
    return dict(((registry.get("nodes") or {}).get(instance_id or "") or {}).get("cni_env") or {})


def _ec2(url: str, region: str, instance_id: str) -> Ec2Facts:
    client = boto3.client("ec2", endpoint_url=url, region_name=region, aws_access_key_id="minieks",
                          aws_secret_access_key="minieks", config=Config(retries={"max_attempts": 1}))
    facts = Ec2Facts()
    try:
        instance = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        facts.subnet = client.describe_subnets(SubnetIds=[instance["SubnetId"]])["Subnets"][0]
        attached = client.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["NetworkInterfaces"]
        created = client.describe_network_interfaces(     # made for the node by ipamd, maybe not attached yet
            Filters=[{"Name": "tag:node.k8s.amazonaws.com/instance_id", "Values": [instance_id]}])["NetworkInterfaces"]
        seen = {e["NetworkInterfaceId"] for e in attached}
        facts.network_interfaces = attached + [e for e in created if e["NetworkInterfaceId"] not in seen]
    except (BotoCoreError, ClientError, IndexError, KeyError) as err:
        facts.error = str(err)
    return facts


def gather(cluster: str, namespace: str, name: str) -> Facts:
    """Everything `diagnose` needs about one pod; KubeApiError(NotFound) when there is no such pod."""
    try:
        return _gather(cluster, namespace, name)
    except KubeUnreachable as err:
        raise ClusterNotRunning(f"cluster {cluster} is not running ('minieks up' starts it): {err}") from None


def _gather(cluster: str, namespace: str, name: str) -> Facts:
    endpoints = _endpoints(cluster)
    kube = KubeClient.from_kubeconfig(endpoints["kubeconfig"])
    pod = kube.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    selector = (f"involvedObject.name={name},involvedObject.namespace={namespace},"
                f"involvedObject.uid={pod['metadata']['uid']}")
    events = kube.get(f"/api/v1/namespaces/{namespace}/events", fieldSelector=selector).get("items") or []
    usage, nodes = _node_usage(kube)
    facts = Facts(pod=pod, events=events, now=time.time(), nodes=usage,
                  log_utc_offset=float(time.localtime().tm_gmtoff))
    for n in usage:
        if n.instance_type and n.instance_type not in facts.types:
            limits = type_limits(n.instance_type)
            if limits:
                facts.types[n.instance_type] = limits
    registry = _registry(cluster)
    node_name = (pod.get("spec") or {}).get("nodeName")
    node = nodes.get(node_name or "")
    if node is not None:
        facts.node = node
        provider = (node.get("spec") or {}).get("providerID", "")
        facts.instance_id = provider.rsplit("/", 1)[-1] or None
    facts.cni_env = _cni_env(kube, registry, facts.instance_id)
    if facts.instance_id and not (pod.get("spec") or {}).get("hostNetwork"):
        entry = (registry.get("nodes") or {}).get(facts.instance_id) or {}
        node_dir = state_dir(cluster) / "nodes" / facts.instance_id
        facts.ipamd = probe(entry.get("namespace"), node_dir / "ipamd.log", entry.get("socket"))
        labels = node["metadata"].get("labels") or {}
        region = labels.get("topology.kubernetes.io/region", "ap-northeast-2")
        facts.ec2 = _ec2(endpoints["ec2_url"], region, facts.instance_id)
    return facts


def explain(cluster: str, namespace: str, name: str):
    """gather + diagnose."""
    from minieks.explain.diagnose import diagnose
    return diagnose(gather(cluster, namespace, name))


__all__ = ["ClusterNotRunning", "explain", "gather", "type_limits"]
