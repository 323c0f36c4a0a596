"""Causes on the CNI side before any address question: ipamd not ready, or another plugin error."""

from __future__ import annotations

from minieks.explain.diagnosis import Cause
from minieks.explain.evidence import clock
from minieks.explain.situation import Situation

GRPC_ERROR = "Error received from AddNetwork gRPC call"
NO_ADDRESS = "failed to assign an IP address to container"
PLUGIN_PREFIX = 'name="aws-cni" failed (add): '
OUR_REQUESTS = "Handling http request"          # ipamd logs every introspection request, ours too


def plugin_error(message: str) -> str:
    """The plugin's own words inside containerd's FailedCreatePodSandBox message."""
    return message.split(PLUGIN_PREFIX, 1)[1] if PLUGIN_PREFIX in message else message


def ipamd_not_ready(s: Situation) -> Cause | None:
    ipamd = s.facts.ipamd
    message = s.last_sandbox_message
    grpc = GRPC_ERROR in message
    socket_missing = ipamd is not None and ipamd.socket_present is False
    unreachable = ipamd is not None and ipamd.enis is None and ipamd.enis_error is not None
    if not (grpc or socket_missing or unreachable):
        return None
    evidence = []
    if grpc:
        n = s.sandbox_failures
        evidence.append(f'kubelet: the plugin could not reach ipamd: "{plugin_error(message)}" '
                        f"({n} sandbox failure{'s' if n != 1 else ''})")
    if socket_missing:
        path = ipamd.socket_path or "/var/run/aws-node/ipamd.sock"
        evidence.append(f"ipamd's gRPC socket {path} does not exist")
    if unreachable:
        evidence.append(f"introspection (127.0.0.1:61679 in the node) did not answer: {ipamd.enis_error}")
    if ipamd is not None and ipamd.metrics is None and ipamd.metrics_error:
        evidence.append(f"metrics (:61678 in the node) did not answer: {ipamd.metrics_error}")
    own = [r for r in s.log if not r.message.startswith(OUR_REQUESTS)]
    if own:
        last = own[-1]
        evidence.append(f"last ipamd log line ({clock(last.time)}): {last.message.splitlines()[0]}")
    now_ok = ipamd is not None and ipamd.enis is not None and not socket_missing
    title = ("ipamd was not ready when the sandbox was set up (it answers now; the kubelet retries)" if now_ok
             else "ipamd is not ready on the node: the CNI plugin cannot ask it for an address")
    log_path = ipamd.log_path if ipamd and ipamd.log_path else "/var/log/aws-routed-eni/ipamd.log"
    remedy = [f"read ipamd's log ({log_path}); on EKS: kubectl -n kube-system logs ds/aws-node -c aws-node",
              "ipamd serves its socket only after nodeInit: it must reach EC2 (IAM permissions, endpoint) and "
              "find the node's ENIs",
              "aws-node restarts ipamd; pod-network pods wait in ContainerCreating until it serves"]
    return Cause("ipamd-not-ready", title, evidence, remedy,
                 {"grpc_error": grpc, "socket_missing": socket_missing, "introspection_unreachable": unreachable})


def other_cni_error(s: Situation) -> Cause | None:
    message = s.last_sandbox_message
    if not message or GRPC_ERROR in message or NO_ADDRESS in message:
        return None
    return Cause("cni-error", f"the sandbox failed: {plugin_error(message)}",
                 [f'kubelet: "{message}" (×{s.sandbox_failures})'],
                 ["read the plugin's log (/var/log/aws-routed-eni/plugin.log) and ipamd's"],
                 {"message": message})
