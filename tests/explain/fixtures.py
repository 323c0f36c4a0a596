"""Hand-made facts in the exact shapes the cluster produces: Pod and Event objects, /v1/enis,
Prometheus text as ipamd writes it, ipamd.log lines, DescribeSubnets/NetworkInterfaces entries."""

from __future__ import annotations

from datetime import datetime, timezone

from minieks.explain import Ec2Facts, Facts, IpamdFacts, NodeUsage, TypeLimits

T0 = 1_795_000_000.0                      # a fixed "now - a while" for every hand-made fact
NODE = "ip-192-168-1-29.ap-northeast-2.compute.internal"
IID = "i-09fd64d9ea0518b84"
SUBNET = "subnet-047560213196a8f46"
T3_MEDIUM = TypeLimits("t3.medium", 3, 6, 110)
SANDBOX = "e46fdd8072bf583c48e6fb79c7d79af8f09f70d5a013dd55156209e985f326d0"
NO_IP = ('Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox '
         f'"{SANDBOX}": plugin type="aws-cni" name="aws-cni" failed (add): add cmd: failed to assign an IP '
         'address to container')
NO_IPAMD = ('Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox '
            f'"{SANDBOX}": plugin type="aws-cni" name="aws-cni" failed (add): add cmd: Error received from '
            'AddNetwork gRPC call: rpc error: code = Unavailable desc = connection error: desc = "transport: Error '
            'while dialing: dial unix /var/run/aws-node/ipamd.sock: connect: no such file or directory"')
TOO_MANY = ("0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are available: 3 No preemption "
            "victims found for incoming pod.")
SUBNET_FULL = ("Unable to attach IPs/Prefixes for the ENI, subnet doesn't seem to have enough IPs/Prefixes. "
               "Consider using new subnet or carve a reserved range using create-subnet-cidr-reservation")


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_time(t: float | None) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log(t: float, level: str, message: str, logger: str = "ipamd") -> str:
    """A line of ipamd.log as the daemon writes it (asctime in the machine's zone; UTC here)."""
    stamp = datetime.fromtimestamp(t, timezone.utc)
    return f"{stamp.strftime('%Y-%m-%d %H:%M:%S')},{stamp.microsecond // 1000:03d} {level} {logger} {message}"


def pod(name: str = "web-7c5d8-abcde", node: str | None = NODE, phase: str = "Pending",
        waiting: str | None = "ContainerCreating", ip: str | None = None, created: float = T0,
        host_network: bool = False, namespace: str = "default") -> dict:
    status: dict = {"phase": phase}
    if waiting:
        status["containerStatuses"] = [{"name": "web", "state": {"waiting": {"reason": waiting}}, "ready": False}]
    if ip:
        status.update(podIP=ip, podIPs=[{"ip": ip}])
    spec: dict = {"containers": [{"name": "web", "image": "nginx:alpine"}]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": "0b8e-uid",
                         "creationTimestamp": rfc3339(created)},
            "spec": spec, "status": status}


def event(reason: str, message: str, first: float, last: float | None = None, count: int = 1,
          component: str = "kubelet", type_: str = "Warning") -> dict:
    return {"apiVersion": "v1", "kind": "Event", "reason": reason, "message": message, "type": type_,
            "count": count, "firstTimestamp": rfc3339(first), "lastTimestamp": rfc3339(last or first),
            "source": {"component": component, **({"host": NODE} if component == "kubelet" else {})},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-7c5d8-abcde"}}


def scheduled(t: float = T0) -> dict:
    return event("Scheduled", f"Successfully assigned default/web-7c5d8-abcde to {NODE}", t,
                 component="default-scheduler", type_="Normal")


def node(max_pods: int = 17, itype: str = "t3.medium") -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": NODE, "labels": {"node.kubernetes.io/instance-type": itype,
                                                  "topology.kubernetes.io/region": "ap-northeast-2"}},
            "spec": {"providerID": f"aws:///ap-northeast-2a/{IID}"},
            "status": {"capacity": {"pods": str(max_pods)}, "allocatable": {"pods": str(max_pods)}}}


def address(ip: str, pod_name: str | None, assigned_at: float = T0, released_at: float | None = None) -> dict:
    if pod_name:
        key = {"networkName": "aws-cni", "containerID": "", "ifName": ""}
        meta = {"k8sPodNamespace": "default", "k8sPodName": pod_name}
        return {"Address": ip, "IPAMKey": key, "IPAMMetadata": meta, "AssignedTime": go_time(assigned_at),
                "UnassignedTime": go_time(None)}
    return {"Address": ip, "IPAMKey": {"networkName": "", "containerID": "", "ifName": ""}, "IPAMMetadata": {},
            "AssignedTime": go_time(None), "UnassignedTime": go_time(released_at)}


def eni(eni_id: str, device: int, cidrs: dict[str, list[dict]], prefix: bool = False) -> dict:
    """cidrs: "a.b.c.d/nn" -> the address entries used in it (unused addresses have none)."""
    return {"ID": eni_id, "IsPrimary": device == 0, "IsTrunk": False, "IsEFA": False, "DeviceNumber": device,
            "AvailableIPv4Cidrs": {c: {"Cidr": {"IP": c.split("/")[0], "Mask": "/////w=="},
                                       "IPAddresses": {a["Address"]: a for a in addrs}, "IsPrefix": prefix,
                                       "AddressFamily": ""} for c, addrs in cidrs.items()},
            "IPv6Cidrs": {}, "IsExcludedForPodIPs": False, "RouteTableID": 254 if device == 0 else device + 1,
            "SubnetID": SUBNET}


def full_eni(eni_id: str, device: int, base: int, used: int = 5, slots: int = 5) -> dict:
    """A secondary-IP ENI with `slots` /32s of which the first `used` carry pods."""
    cidrs = {}
    for n in range(slots):
        ip = f"192.168.1.{base + n}"
        cidrs[f"{ip}/32"] = [address(ip, f"web-{base + n}")] if n < used else []
    return eni(eni_id, device, cidrs)


def enis_doc(*enis: dict) -> dict:
    total = sum(len(e["AvailableIPv4Cidrs"]) for e in enis)
    assigned = sum(1 for e in enis for c in e["AvailableIPv4Cidrs"].values() for a in c["IPAddresses"].values()
                   if a["IPAMKey"]["networkName"])
    return {"0": {"TotalIPs": total, "AssignedIPs": assigned, "ENIs": {e["ID"]: e for e in enis}}}


def metrics(eni_max: int, ip_max: int, enis: int, total: int, assigned: int,
            api_errors: dict[tuple[str, str], int] | None = None, no_ip: int = 0) -> str:
    """/metrics as ipamd writes it (Go's text format; only the families explain reads, and a few more)."""
    out = ["# HELP awscni_add_ip_req_count The number of add IP address requests",
           "# TYPE awscni_add_ip_req_count counter", f"awscni_add_ip_req_count {assigned + no_ip}",
           "# HELP awscni_assigned_ip_addresses The number of IP addresses assigned to pods",
           "# TYPE awscni_assigned_ip_addresses gauge", f"awscni_assigned_ip_addresses {assigned}"]
    if api_errors:
        out += ["# HELP awscni_aws_api_error_count The number of times AWS API returns an error",
                "# TYPE awscni_aws_api_error_count counter"]
        out += [f'awscni_aws_api_error_count{{api="{api}",error="{code}"}} {n}'
                for (api, code), n in sorted(api_errors.items())]
    out += ["# HELP awscni_eni_allocated The number of ENIs allocated", "# TYPE awscni_eni_allocated gauge",
            f"awscni_eni_allocated {enis}",
            "# HELP awscni_eni_max The maximum number of ENIs that can be attached to the instance, accounting for "
            "unmanaged ENIs", "# TYPE awscni_eni_max gauge", f"awscni_eni_max {eni_max}",
            "# HELP awscni_ip_max The maximum number of IP addresses that can be allocated to the instance",
            "# TYPE awscni_ip_max gauge", f"awscni_ip_max {ip_max}",
            "# HELP awscni_no_available_ip_addresses The number of pod IP assignments that fail due to no available "
            "IP addresses", "# TYPE awscni_no_available_ip_addresses counter",
            f"awscni_no_available_ip_addresses {no_ip}",
            "# HELP awscni_total_ip_addresses The total number of IP addresses",
            "# TYPE awscni_total_ip_addresses gauge", f"awscni_total_ip_addresses {total}"]
    return "\n".join(out) + "\n"


def subnet(available: int, cidr: str = "192.168.1.0/24") -> dict:
    return {"AvailabilityZone": "ap-northeast-2a", "AvailableIpAddressCount": available, "CidrBlock": cidr,
            "SubnetId": SUBNET, "VpcId": "vpc-045f88445347ff821", "State": "available"}


def ec2_eni(eni_id: str, device: int, primary_ip: str, secondary: list[str], status: str = "attached",
            prefixes: list[str] | None = None) -> dict:
    return {"NetworkInterfaceId": eni_id, "SubnetId": SUBNET, "Status": "in-use", "PrivateIpAddress": primary_ip,
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": primary_ip}] +
                                  [{"Primary": False, "PrivateIpAddress": ip} for ip in secondary],
            "Ipv4Prefixes": [{"Ipv4Prefix": p} for p in prefixes or []],
            "Attachment": {"DeviceIndex": device, "NetworkCardIndex": 0, "InstanceId": IID, "Status": status}}


def facts(p: dict, events: list[dict], *, now: float = T0 + 60, enis: dict | None = None, metrics_text: str = "",
          log_lines: list[str] | None = None, ec2: Ec2Facts | None = None, cni_env: dict | None = None,
          nodes: list[NodeUsage] | None = None, max_pods: int = 17, pods_on_node: int = 9,
          ipamd: IpamdFacts | None = None) -> Facts:
    on_node = bool((p.get("spec") or {}).get("nodeName"))
    return Facts(pod=p, events=events, now=now, node=node(max_pods) if on_node else None,
                 instance_id=IID if on_node else None,
                 nodes=nodes if nodes is not None else [NodeUsage(NODE, pods_on_node, max_pods, "t3.medium")],
                 cni_env=cni_env if cni_env is not None else {"WARM_ENI_TARGET": "1",
                                                              "ENABLE_PREFIX_DELEGATION": "false"},
                 types={"t3.medium": T3_MEDIUM},
                 ipamd=ipamd or (IpamdFacts(enis=enis, metrics=metrics_text, log_lines=log_lines or [],
                                            socket_present=True, log_path="/var/log/aws-routed-eni/ipamd.log")
                                 if on_node else None),
                 ec2=ec2 or (Ec2Facts(subnet=subnet(245)) if on_node else None))
