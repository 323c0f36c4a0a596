"""`kubectl logs`: what each pod's container would have written to its stdout on EKS.

aws-node's container shows its entrypoint (binaries installed, ipamd started, connectivity
checked, CNI config copied: the node is Ready from then on); ipamd itself logs to
/var/log/aws-routed-eni/ipamd.log on the node, as upstream's default AWS_VPC_K8S_CNI_LOG_FILE
says, not to stdout. nginx shows its start-up and access log (kube/images.py). Everything else
(netshoot's `tail -f /dev/null`, kube-proxy and CoreDNS stand-ins) has written nothing.
"""

from __future__ import annotations

import time

from minieks.kube.timefmt import parse_rfc3339

AWS_NODE_BINARIES = ("aws-cni", "egress-cni")


def _logrus(when: float, message: str) -> str:
    return f'time="{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))}" level=info msg="{message}"'


def aws_node_lines(pod: dict, ipamd_serving: bool = True) -> list[str]:
    """The aws-vpc-cni entrypoint's output, timed by the pod's start and its Ready condition; it
    stops at "Checking for IPAM connectivity" while ipamd does not serve its socket."""
    status = pod.get("status") or {}
    if not status.get("startTime"):
        return []
    started = parse_rfc3339(status["startTime"])
    lines = [f"Installed /host/opt/cni/bin/{binary}" for binary in AWS_NODE_BINARIES]
    lines += [_logrus(started, "Starting IPAM daemon... "), _logrus(started, "Checking for IPAM connectivity... ")]
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready" and c.get("status") == "True"),
                 None)
    if ready and ipamd_serving:
        at = parse_rfc3339(ready.get("lastTransitionTime") or status["startTime"])
        lines += [_logrus(at, "Copying config file... "),
                  _logrus(at, "Successfully copied CNI plugin binary and config file.")]
    return lines
