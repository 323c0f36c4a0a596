"""The seed lab (the study group's week-2 EKS networking session), step by step, on minieks.

Each step prints the real commands a learner types and their real output, then says in a sentence
or two what it shows. Steps 1–8 look at the cluster as EKS sets it up; step 9 scales nginx until the
nodes' max pods stop it; step 10 applies the fix (prefix delegation on new nodes).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from minieks.lab.session import Session

NETSHOOT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: netshoot-pod
spec:
  replicas: 3
  selector:
    matchLabels:
      app: netshoot-pod
  template:
    metadata:
      labels:
        app: netshoot-pod
    spec:
      containers:
      - name: netshoot-pod
        image: nicolaka/netshoot
        command: ["tail"]
        args: ["-f", "/dev/null"]
      terminationGracePeriodSeconds: 0
"""
NGINX = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:alpine
        ports:
        - containerPort: 80
"""
INSTANCES_QUERY = ("Reservations[*].Instances[*].{PublicIPAdd:PublicIpAddress,PrivateIPAdd:PrivateIpAddress,"
                   "InstanceName:Tags[?Key=='Name']|[0].Value,Status:State.Name}")
TYPES_QUERY = ("InstanceTypes[].{Type: InstanceType, MaxENI: NetworkInfo.MaximumNetworkInterfaces, "
               "IPv4addr: NetworkInfo.Ipv4AddressesPerInterface}")


@dataclass
class Step:
    title: str
    summary: str
    run: Callable[["Lab"], None]


class Lab:
    """The scenario's shared facts between steps (node names, pod names)."""

    def __init__(self, session: Session):
        self.s = session
        self.nodes: list[str] = []
        self.pods: list[str] = []
        self.ips: list[str] = []

    # ---------------------------------------------------------------------------- helpers
    def json(self, args: str) -> dict:
        return json.loads(self.s.kubectl(f"{args} -o json", quiet=True) or "{}")

    def refresh_nodes(self) -> None:
        self.nodes = sorted(n["metadata"]["name"] for n in self.json("get nodes")["items"])

    def wait_pods(self, selector: str, want: int, namespace: str = "default", timeout: float = 120) -> list[dict]:
        deadline, last = time.time() + timeout, -1
        while True:
            pods = self.json(f"get pod -n {namespace} -l {selector}")["items"]
            running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
            if len(running) >= want:
                return running
            if len(running) != last:
                self.s.progress(f"{len(running)}/{want} pods Running")
                last = len(running)
            if time.time() > deadline:
                raise RuntimeError(f"only {len(running)} of {want} pods of {selector} became Running")
            time.sleep(0.5)

    def settle(self, selector: str, timeout: float = 120) -> list[dict]:
        """Wait until the set of Running pods stops growing for a while (the pool has had its say)."""
        deadline, last, stable_since = time.time() + timeout, None, time.time()
        while True:
            pods = self.json(f"get pod -l {selector}")["items"]
            running = sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")
            state = (len(pods), running)
            if state != last:
                self.s.progress(f"{running}/{len(pods)} Running")
                last, stable_since = state, time.time()
            elif running == len(pods) or time.time() - stable_since > 15:
                return pods
            if time.time() > deadline:
                return pods
            time.sleep(0.5)

    def node_table(self) -> None:
        """Pods, ENIs and addresses per node, then the Pending pods with their reason."""
        pods = self.json("get pod -A")["items"]
        per_node = Counter(p["spec"].get("nodeName") for p in pods if p["status"].get("phase") == "Running")
        nodes = self.json("get nodes")["items"]
        lines = [f"{'NODE':52} {'PODS':>5} {'MAX':>4} {'ENIS':>5} {'ADDRESSES':>9}"]
        for n in nodes:
            name = n["metadata"]["name"]
            iid = n["spec"]["providerID"].rsplit("/", 1)[-1]
            enis = json.loads(self.s.run(
                "aws ec2 describe-network-interfaces", ["aws", "ec2", "describe-network-interfaces", "--filters",
                                                        f"Name=attachment.instance-id,Values={iid}"], quiet=True))
            enis = enis["NetworkInterfaces"]
            addresses = sum(len(e["PrivateIpAddresses"]) - 1 + 16 * len(e.get("Ipv4Prefixes", [])) for e in enis)
            lines.append(f"{name:52} {per_node[name]:>5} {n['status']['capacity']['pods']:>4} {len(enis):>5} "
                         f"{addresses:>9}")
        self.s.say("\n".join(lines))
        if self.s.current:
            from minieks.lab.session import Entry
            self.s.current.entries.append(Entry("(pods, ENIs and secondary addresses per node)", "\n".join(lines) + "\n"))
        waiting = [p for p in pods if p["status"].get("phase") != "Running"]
        if waiting:
            reasons = Counter(_reason(p) for p in waiting)
            for reason, n in reasons.items():
                self.s.note(f"{n} pods not Running: {reason}")


def _reason(pod: dict) -> str:
    for c in pod["status"].get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"Pending — {c.get('message')}"
    for cs in pod["status"].get("containerStatuses") or []:
        waiting = cs.get("state", {}).get("waiting")
        if waiting:
            return f"{waiting.get('reason')} — the node has no address for it yet (FailedCreatePodSandBox)"
    return pod["status"].get("phase", "Unknown")


# ------------------------------------------------------------------------------------- steps
def step_nodes(lab: Lab) -> None:
    s = lab.s
    s.run(f'aws ec2 describe-instances --query "{INSTANCES_QUERY}" --filters Name=instance-state-name,Values=running '
          f'--output table', ["aws", "ec2", "describe-instances", "--query", INSTANCES_QUERY, "--filters",
                              "Name=instance-state-name,Values=running", "--output", "table"])
    lab.refresh_nodes()
    first = lab.nodes[0]
    for command in ("hostnamectl", "ip -c addr", "ip -c route", "iptables -t nat -S"):
        s.ssh(first, command)
    for other in lab.nodes[1:]:
        s.ssh(other, "ip -br addr")
    s.note("eth0 holds the node's primary address; the secondary addresses EC2 gave the ENIs are the warm pool "
           "(aws ec2 describe-network-interfaces lists them), not configured on the node until a pod uses one.")


def step_cni(lab: Lab) -> None:
    s = lab.s
    s.kubectl("get daemonset -n kube-system aws-node -o wide")
    node = lab.nodes[0]
    s.ssh(node, "curl -s http://localhost:61679/v1/enis | python3 -m json.tool | head -40")
    s.ssh(node, "curl -s http://localhost:61678/metrics | grep -E '^awscni_(total|assigned)_ip_addresses|^awscni_eni_allocated'")


def step_coredns(lab: Lab) -> None:
    s = lab.s
    s.kubectl("get pod -n kube-system -l k8s-app=kube-dns -owide")
    for node in lab.nodes:
        s.ssh(node, "ip -c route")


def step_netshoot(lab: Lab) -> None:
    s = lab.s
    s.run("cat <<EOF | kubectl apply -f -  (netshoot-pod, 3 replicas)", ["kubectl", "apply", "-f", "-"], input=NETSHOOT)
    lab.wait_pods("app=netshoot-pod", 3)
    lab.pods = [s.kubectl(f"get pod -l app=netshoot-pod -o jsonpath='{{.items[{i}].metadata.name}}'",
                          ).strip() for i in range(3)]
    lab.ips = [s.kubectl(f"get pod -l app=netshoot-pod -o jsonpath='{{.items[{i}].status.podIP}}'").strip()
               for i in range(3)]
    s.kubectl("get pod -o wide")
    s.kubectl("get pod -o=custom-columns=NAME:.metadata.name,IP:.status.podIP")
    for node in lab.nodes:
        s.ssh(node, "ip -c route")


def step_pod_to_pod(lab: Lab) -> None:
    s = lab.s
    pods = lab.json("get pod -l app=netshoot-pod")["items"]
    by_name = {p["metadata"]["name"]: p for p in pods}
    node1 = by_name[lab.pods[0]]["spec"]["nodeName"]
    s.capture(node1, "any", "icmp", lambda: s.kubectl(f"exec -it {lab.pods[0]} -- ping -c 2 {lab.ips[1]}"))
    s.kubectl(f"exec -it {lab.pods[1]} -- ping -c 2 {lab.ips[2]}")
    s.kubectl(f"exec -it {lab.pods[2]} -- ping -c 2 {lab.ips[0]}")
    s.ssh(node1, "ip rule")
    s.ssh(node1, "ip route show table local")
    s.ssh(node1, "ip route show table main")
    s.note("The capture shows pod addresses at both ends: inside the VPC there is no NAT and no overlay.")


def step_internet(lab: Lab) -> None:
    s = lab.s
    pod = lab.json(f"get pod {lab.pods[0]}")
    node = pod["spec"]["nodeName"]
    s.capture(node, "eth0", "icmp", lambda: s.kubectl(f"exec -it {lab.pods[0]} -- ping -c 1 www.example.com"))
    s.capture(node, "eth0", "icmp", lambda: s.kubectl(f"exec -it {lab.pods[0]} -- ping -i 0.1 -c 5 203.0.113.10"))
    s.ssh(node, "iptables -t nat -S | grep 'A AWS-SNAT-CHAIN'")
    s.kubectl(f"exec -it {lab.pods[0]} -- curl -s http://www.example.com/")
    s.note("Leaving the VPC, packets carry the node's primary address: AWS-SNAT-CHAIN-0 SNATs everything not "
           "for the VPC to eth0's address (--random-fully); the internet gateway then maps it to the public IP.")


def step_board(lab: Lab) -> None:
    s = lab.s
    s.run(f"minieks board --cluster {s.cluster}", ["minieks", "board", "--cluster", s.cluster])


def step_max_pods(lab: Lab) -> None:
    s = lab.s
    s.run(f'aws ec2 describe-instance-types --filters Name=instance-type,Values=t3.* --query "{TYPES_QUERY}" '
          f'--output table', ["aws", "ec2", "describe-instance-types", "--filters", "Name=instance-type,Values=t3.*",
                              "--query", TYPES_QUERY, "--output", "table"])
    s.run("minieks max-pods t3.medium --explain", ["minieks", "max-pods", "t3.medium", "--explain"])
    s.kubectl("get nodes -o custom-columns=NAME:.metadata.name,MAXPODS:.status.capacity.pods")


def step_scale(lab: Lab) -> None:
    s = lab.s
    s.run("cat <<EOF | kubectl apply -f -  (nginx-deployment, 2 replicas)", ["kubectl", "apply", "-f", "-"],
          input=NGINX)
    lab.settle("app=nginx")
    lab.node_table()
    for replicas in (8, 15, 30, 50):
        s.kubectl(f"scale deployment nginx-deployment --replicas={replicas}")
        lab.settle("app=nginx")
        s.kubectl("get deployment nginx-deployment")
        lab.node_table()
    s.picture("board-step9")
    pending = lab.json("get pod -l app=nginx --field-selector=status.phase=Pending")["items"]
    if pending:
        s.kubectl(f"describe pod {pending[0]['metadata']['name']}")
        s.run("kubectl get events --field-selector reason=FailedScheduling | tail -3",
              ["sh", "-c", "kubectl get events --field-selector reason=FailedScheduling | tail -3"])


def step_fix(lab: Lab) -> None:
    s = lab.s
    s.kubectl("set env daemonset aws-node -n kube-system ENABLE_PREFIX_DELEGATION=true WARM_PREFIX_TARGET=1")
    s.run("minieks max-pods t3.medium --prefix-delegation --explain",
          ["minieks", "max-pods", "t3.medium", "--prefix-delegation", "--explain"])
    s.note("A node's max pods is set when it joins, so the running nodes keep 17: replace them, as EKS does, "
           "with a new node group (its nodes register with max pods 110).")
    s.run(f"minieks nodegroup delete --cluster {s.cluster} --name ng1",
          ["minieks", "nodegroup", "delete", "--cluster", s.cluster, "--name", "ng1"], timeout=300)
    s.run(f"minieks nodegroup create --cluster {s.cluster} --name ng2 --instance-type t3.medium --nodes 3",
          ["minieks", "nodegroup", "create", "--cluster", s.cluster, "--name", "ng2", "--instance-type", "t3.medium",
           "--nodes", "3"], timeout=300)
    lab.refresh_nodes()
    lab.wait_pods("app=nginx", 50, timeout=180)
    s.kubectl("get deployment nginx-deployment")
    s.kubectl("get nodes -o custom-columns=NAME:.metadata.name,MAXPODS:.status.capacity.pods")
    lab.node_table()
    s.picture("board-step10")
    node = lab.nodes[0]
    s.ssh(node, "curl -s http://localhost:61679/v1/enis | python3 -c \"import json,sys; d=json.load(sys.stdin)['0']; "
                "print('total', d['TotalIPs'], 'assigned', d['AssignedIPs']); "
                "[print(e, list(v['AvailableIPv4Cidrs'])) for e, v in d['ENIs'].items()]\"")


STEPS = [
    Step("Look at the nodes", "Three t3.medium instances in three subnets: their addresses, interfaces, routes "
         "and NAT rules as EKS sets them up.", step_nodes),
    Step("The CNI explained", "The AWS VPC CNI is two parts: the aws-cni binary kubelet calls, and ipamd "
         "(aws-node) keeping a warm pool of ENIs and secondary IPs so new pods get an address at once.", step_cni),
    Step("CoreDNS pod IPs", "CoreDNS pods have VPC addresses from the nodes' warm pools; each node routes a /32 "
         "to each local pod.", step_coredns),
    Step("Deploy netshoot-pod", "Three network-toolbox pods; their names and IPs three ways; a /32 route per pod "
         "appears on its node via an eni... interface.", step_netshoot),
    Step("Pod to pod", "Pods ping each other across nodes with their own addresses; the rules and tables steer "
         "traffic.", step_pod_to_pod),
    Step("Pod to the internet", "Traffic leaving the VPC is SNATed to the node's primary address.", step_internet),
    Step("A cluster view", "The cluster board shows nodes, their ENIs, address slots and pods.", step_board),
    Step("Max pods", "Max pods per node = ENIs × (IPv4 per ENI − 1) + 2: 17 for t3.medium, 15 for workloads.",
         step_max_pods),
    Step("Scale until it breaks", "nginx scaled 2 → 8 → 15 → 30 → 50: ENIs are attached as the pool grows; past "
         "the nodes' max pods the extra pods stay Pending (\"Too many pods\").", step_scale),
    Step("The fix: prefix delegation", "With prefix delegation each ENI slot holds a /28 (16 addresses): new "
         "t3.medium nodes take 110 pods and all 50 nginx pods run.", step_fix),
]
