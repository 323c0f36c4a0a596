"""EKS's names for what the lab creates: node names, provider IDs, node labels, object names.

A learner compares minieks' output with EKS's, so these follow what EKS (with an eksctl managed
node group on Amazon Linux 2023) shows.
"""

from __future__ import annotations

import hashlib
import random

from minieks.aws.instance_types import InstanceType

KUBELET_VERSIONS = {"1.27": "v1.27.16-eks-a737599", "1.28": "v1.28.15-eks-aeac579", "1.29": "v1.29.12-eks-aeac579",
                    "1.30": "v1.30.8-eks-aeac579", "1.31": "v1.31.4-eks-aeac579", "1.32": "v1.32.0-eks-aeac579",
                    "1.33": "v1.33.0-eks-802817d"}
OS_IMAGE = "Amazon Linux 2023.6.20250115"
KERNEL = "6.1.119-129.201.amzn2023.x86_64"
RUNTIME = "containerd://1.7.25"
AMI_ID = "ami-0a1b2c3d4e5f60718"
# Kubernetes' "safe" alphabet for generated names (no vowels, no look-alikes)
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def node_name(private_ip: str, region: str) -> str:
    """EC2's private DNS name, which EKS uses as the node name."""
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{private_ip.replace('.', '-')}.{domain}"


def provider_id(zone: str, instance_id: str) -> str:
    return f"aws:///{zone}/{instance_id}"


def node_labels(name: str, itype: InstanceType, region: str, zone: str, zone_id: str, cluster: str,
                nodegroup: str) -> dict[str, str]:
    return {
        "alpha.eksctl.io/cluster-name": cluster,
        "alpha.eksctl.io/nodegroup-name": nodegroup,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": itype.name,
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": nodegroup,
        "eks.amazonaws.com/nodegroup-image": AMI_ID,
        "eks.amazonaws.com/sourceLaunchTemplateVersion": "1",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "k8s.io/cloud-provider-aws": hashlib.md5(cluster.encode()).hexdigest(),
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": itype.name,
        "topology.k8s.aws/zone-id": zone_id,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
    }


def template_hash(template: object) -> str:
    """pod-template-hash: a short stable hash of the pod template, in the safe alphabet."""
    digest = int(hashlib.sha256(repr(template).encode()).hexdigest(), 16)
    chars = []
    for _ in range(10):
        digest, rest = divmod(digest, len(SAFE_ALPHABET))
        chars.append(SAFE_ALPHABET[rest])
    return "".join(chars)


def random_suffix(rng: random.Random, length: int = 5) -> str:
    """generateName's suffix (nginx-deployment-5c8f5d7b9-<x7k2p>)."""
    return "".join(rng.choice(SAFE_ALPHABET) for _ in range(length))
