"""What must hold after any chaos, as a user can check it: the Kubernetes API, EC2's
DescribeNetworkInterfaces (boto3 at the cluster's EC2 endpoint), each node's ipamd introspection
(`curl localhost:61679/v1/enis` in the node's namespace) and the pods' own namespaces.

- no address given to two pods;
- EC2's attached ENIs and secondary addresses = every ipamd's /v1/enis, and ipamd's assigned
  addresses = the node's pods' IPs, once settled;
- every Running pod answers a ping from a pod on another node (or its own node when alone);
- nothing left after `minieks down`: no namespace, process, run directory or state directory.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import boto3

from tests.cluster.conftest import Kubectl, wait_for


# ----------------------------------------------------------------------------------- reading
def endpoints(state: Path) -> dict:
    return json.loads((state / "endpoints.json").read_text())


def ec2_client(state: Path):
    """boto3's EC2 client at the cluster's endpoint, with the cluster's credentials where it has them."""
    doc = endpoints(state)
    creds = doc.get("credentials") or {}
    return boto3.client("ec2", endpoint_url=doc["ec2_url"], region_name=doc.get("region", "ap-northeast-2"),
                        aws_access_key_id=creds.get("access_key_id", "test"),
                        aws_secret_access_key=creds.get("secret_access_key", "test"))


def instance_id(node: dict) -> str:
    return node["spec"]["providerID"].rsplit("/", 1)[1]


def ec2_enis(ec2, iid: str) -> dict[str, set[str]]:
    """ENI id → its secondary addresses, for the ENIs attached to the instance."""
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: {a["PrivateIpAddress"] for a in e["PrivateIpAddresses"] if not a["Primary"]}
            for e in enis}


def ipamd_enis(namespace: str) -> dict:
    """Network card 0 of the node's ipamd introspection (/v1/enis)."""
    out = subprocess.run(["ip", "netns", "exec", namespace, "curl", "-s", "-m", "5", "localhost:61679/v1/enis"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, f"introspection of {namespace}: {out.stderr}"
    return json.loads(out.stdout)["0"]


def ipamd_view(doc: dict) -> tuple[dict[str, set[str]], dict[str, tuple[str, str]], dict[str, set[str]]]:
    """(ENI id → its addresses, assigned address → (pod namespace, pod name), ENI id → assigned addresses)."""
    addresses: dict[str, set[str]] = {}
    assigned: dict[str, tuple[str, str]] = {}
    per_eni: dict[str, set[str]] = {}
    for eni_id, eni in doc["ENIs"].items():
        addresses[eni_id] = {c.split("/")[0] for c, cidr in eni["AvailableIPv4Cidrs"].items() if not cidr["IsPrefix"]}
        per_eni[eni_id] = set()
        for cidr in eni["AvailableIPv4Cidrs"].values():
            for ip, entry in cidr["IPAddresses"].items():
                if entry["IPAMKey"]["networkName"]:
                    meta = entry["IPAMMetadata"]
                    assigned[ip] = (meta.get("k8sPodNamespace", ""), meta.get("k8sPodName", ""))
                    per_eni[eni_id].add(ip)
    return addresses, assigned, per_eni


def lab_registry(state: Path) -> dict:
    return json.loads((state / "lab.json").read_text())


def node_namespaces(state: Path) -> dict[str, str]:
    """Instance id → the node's network namespace, from the lab's registry."""
    return {iid: n["namespace"] for iid, n in lab_registry(state)["nodes"].items()}


def pod_network_pods(kubectl: Kubectl) -> list[dict]:
    """Every pod on the pod network (not hostNetwork) that is not being deleted."""
    return [p for p in kubectl.json("get", "pod", "-A")["items"]
            if not p["spec"].get("hostNetwork") and not p["metadata"].get("deletionTimestamp")]


def running(kubectl: Kubectl, selector: str, n: int, namespace: str = "default"):
    pods = kubectl.json("get", "pod", "-n", namespace, "-l", selector)["items"]
    ok = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    return ok if len(ok) == n and len(pods) == n else None


# -------------------------------------------------------------------------------- invariants
def duplicate_addresses(kubectl: Kubectl) -> list[str]:
    """Addresses held by more than one live pod on the pod network."""
    counts = Counter(p["status"].get("podIP") for p in pod_network_pods(kubectl) if p["status"].get("podIP"))
    return [f"{ip} held by {n} pods" for ip, n in counts.items() if n > 1]


def addresses_agree(kubectl: Kubectl, ec2, state: Path) -> list[str]:
    """Per node: EC2's attached ENIs and secondary addresses are ipamd's, ipamd's assigned addresses are
    exactly the node's pods' addresses. The disagreements, as sentences (empty: all agree)."""
    problems = []
    namespaces = node_namespaces(state)
    pods = pod_network_pods(kubectl)
    for node in kubectl.json("get", "nodes")["items"]:
        name, iid = node["metadata"]["name"], instance_id(node)
        if iid not in namespaces:
            problems.append(f"{name}: no node namespace for {iid}")
            continue
        in_ec2 = ec2_enis(ec2, iid)
        doc = ipamd_enis(namespaces[iid])
        in_ipamd, assigned, _ = ipamd_view(doc)
        if in_ec2 != in_ipamd:
            problems.append(f"{name}: EC2 has {in_ec2}, ipamd has {in_ipamd}")
        total = sum(len(a) for a in in_ec2.values())
        if doc["TotalIPs"] != total:
            problems.append(f"{name}: ipamd TotalIPs {doc['TotalIPs']}, EC2 {total} secondary addresses")
        mine = {p["status"].get("podIP"): (p["metadata"]["namespace"], p["metadata"]["name"])
                for p in pods if p["spec"].get("nodeName") == name and p["status"].get("podIP")}
        if assigned != mine or doc["AssignedIPs"] != len(mine):
            problems.append(f"{name}: ipamd assigned {doc['AssignedIPs']} {assigned}, pods {mine}")
    return problems


def unreachable_pods(kubectl: Kubectl, state: Path) -> list[str]:
    """Running pods on the pod network that do not answer a ping from a pod on another node (from the
    source pod's own network namespace; a pod alone in the cluster is pinged from its node)."""
    registry = lab_registry(state)["pods"]
    pods = [p for p in pod_network_pods(kubectl)
            if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
    netns = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": registry.get(
        f"{p['metadata']['namespace']}/{p['metadata']['name']}", {}).get("netns") for p in pods}
    problems = []
    for pod in pods:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        others = [p for p in pods if p["spec"]["nodeName"] != pod["spec"]["nodeName"]] or \
                 [p for p in pods if p is not pod]
        source = next((netns[f"{p['metadata']['namespace']}/{p['metadata']['name']}"] for p in others
                       if netns[f"{p['metadata']['namespace']}/{p['metadata']['name']}"]), None)
        if source is None:
            continue
        done = subprocess.run(["ip", "netns", "exec", source, "ping", "-c", "1", "-W", "2", pod["status"]["podIP"]],
                              capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            problems.append(f"{key} ({pod['status']['podIP']}) does not answer {source}")
    return problems


def check_settled(kubectl: Kubectl, state: Path, timeout: float = 90) -> None:
    """Wait until the address invariants hold, then check the data plane; fail with what disagrees."""
    ec2 = ec2_client(state)
    last: list[str] = []

    def agree() -> bool:
        nonlocal last
        last = duplicate_addresses(kubectl) + addresses_agree(kubectl, ec2, state)
        return not last
    try:
        wait_for(agree, timeout=timeout, interval=2, what="EC2, ipamd and the pods agreeing")
    except AssertionError:
        raise AssertionError(f"not settled: {last}") from None
    assert unreachable_pods(kubectl, state) == []


def leftovers(name: str, state: Path | None = None) -> list[str]:
    """What a cluster left behind: namespaces, processes naming it, its run and state directories."""
    left = [f"netns {line.split()[0]}" for line in
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith(f"mek-{name}-") or line.split() and line.split()[0] == f"mek-{name}"]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if f"mek-{name}".encode() in cmdline or f"--cluster\0{name}\0".encode() in cmdline + b"\0":
                left.append(f"process {proc.name}: " + cmdline.replace(b"\0", b" ").decode(errors="replace"))
    for directory in [Path("/run") / f"mek-{name}"] + ([state] if state else []):
        if directory.exists():
            left.append(f"directory {directory}")
    return left
