"""The objects an EKS cluster has before the user applies anything: the aws-node and kube-proxy
DaemonSets (host network) and the CoreDNS Deployment (two pods on the pod network), in kube-system,
plus the `kubernetes` and `kube-dns` Services."""

from __future__ import annotations

ECR = "602401143452.dkr.ecr.{region}.amazonaws.com"
CNI_VERSION = "v1.23.1"
KUBE_PROXY = {"1.27": "v1.27.16", "1.28": "v1.28.15", "1.29": "v1.29.10", "1.30": "v1.30.6", "1.31": "v1.31.3",
              "1.32": "v1.32.0", "1.33": "v1.33.0"}


def aws_node(region: str, cni_env: dict[str, str]) -> dict:
    env = [{"name": k, "value": v} for k, v in sorted(cni_env.items())]
    env.append({"name": "MY_NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}})
    return _daemonset("aws-node", {"k8s-app": "aws-node", "app.kubernetes.io/name": "aws-node",
                                   "app.kubernetes.io/instance": "aws-vpc-cni"},
                      [{"name": "aws-node", "image": f"{ECR.format(region=region)}/amazon-k8s-cni:{CNI_VERSION}-eksbuild.1",
                        "env": env, "ports": [{"containerPort": 61678, "name": "metrics"}]}])


def kube_proxy(region: str, version: str) -> dict:
    return _daemonset("kube-proxy", {"k8s-app": "kube-proxy"},
                      [{"name": "kube-proxy",
                        "image": f"{ECR.format(region=region)}/eks/kube-proxy:{KUBE_PROXY[version]}-minimal-eksbuild.2",
                        "command": ["kube-proxy", "--v=2", "--config=/var/lib/kube-proxy-config/config"]}])


def _daemonset(name: str, labels: dict[str, str], containers: list[dict]) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "kube-system", "labels": dict(labels)},
            "spec": {"selector": {"matchLabels": {"k8s-app": labels["k8s-app"]}},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                                           "serviceAccountName": name, "containers": containers,
                                           "tolerations": [{"operator": "Exists"}]}}}}


def coredns(region: str) -> dict:
    labels = {"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dict(labels)},
            "spec": {"replicas": 2, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns",
                                           "containers": [{"name": "coredns",
                                                           "image": f"{ECR.format(region=region)}/eks/coredns:v1.11.4-eksbuild.2",
                                                           "args": ["-conf", "/etc/coredns/Corefile"],
                                                           "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                                                     {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                                                     {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}]}]}}}}


def services() -> list[tuple[str, dict]]:
    kubernetes = {"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "kubernetes", "namespace": "default",
                               "labels": {"component": "apiserver", "provider": "kubernetes"}},
                  "spec": {"clusterIP": "10.100.0.1", "type": "ClusterIP",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}]}}
    kube_dns = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system",
                             "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
                "spec": {"clusterIP": "10.100.0.10", "type": "ClusterIP", "selector": {"k8s-app": "kube-dns"},
                         "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                   {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}
    return [("services", kubernetes), ("services", kube_dns)]


def all_objects(region: str, kube_version: str, cni_env: dict[str, str]) -> list[tuple[str, dict]]:
    return [("daemonsets", aws_node(region, cni_env)), ("daemonsets", kube_proxy(region, kube_version)),
            ("deployments", coredns(region)), *services()]
