"""The runtime side of CNI (what containerd's libcni does for kubelet): run the plugin named by the
network configuration, with the CNI environment and the net config on stdin, and read its answer.

The plugin is exec'd as on a node, `ip netns exec <node namespace> aws-cni`, so the real protocol
(exec, env, JSON on stdin/stdout) is what is exercised; its errors come back as CniCallError with
the plugin's own message, ready for kubelet's FailedCreatePodSandBox text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from minieks.cni.conflist import ConflistSettings, render_conflist

CNI_VERSION = "1.0.0"
PLUGIN = "aws-cni"


class CniCallError(RuntimeError):
    """The plugin answered with a CNI error (or could not be run)."""

    def __init__(self, command: str, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.command, self.code, self.msg, self.details = command, code, msg, details


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str
    sandbox_id: str          # CNI_CONTAINERID: the pod sandbox's 64-hex id
    netns_path: str          # CNI_NETNS


def plugin_path() -> str:
    """The aws-cni executable installed with this package (next to the running Python)."""
    local = os.path.join(os.path.dirname(sys.executable), PLUGIN)
    return local if os.path.exists(local) else (shutil.which(PLUGIN) or local)


def net_config(cni_env: dict[str, str], prev_result: dict | None = None) -> bytes:
    """The aws-cni entry of the rendered 10-aws.conflist, as libcni hands it to the plugin."""
    conflist = json.loads(render_conflist(ConflistSettings.from_env(cni_env)))
    entry = dict(conflist["plugins"][0], cniVersion=CNI_VERSION, name=conflist["name"])
    entry["runtimeConfig"] = {"io.kubernetes.cri.pod-annotations": {}}
    if prev_result is not None:
        entry["prevResult"] = prev_result
    return json.dumps(entry).encode()


def call(command: str, node_namespace: str, pod: PodRef, ipamd_socket: str, cni_env: dict[str, str],
         prev_result: dict | None = None, timeout: float = 60, executor: str | None = None) -> dict | None:
    """Run one CNI command for a pod; the parsed result for ADD, None for DEL/CHECK."""
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=pod.sandbox_id, CNI_NETNS=pod.netns_path,
               CNI_IFNAME="eth0", CNI_PATH=os.path.dirname(plugin_path()),
               CNI_ARGS=(f"IgnoreUnknown=1;K8S_POD_NAMESPACE={pod.namespace};K8S_POD_NAME={pod.name};"
                         f"K8S_POD_INFRA_CONTAINER_ID={pod.sandbox_id};K8S_POD_UID={pod.uid}"),
               MINIEKS_IPAMD_SOCKET=ipamd_socket)
    if executor:
        env["MINIEKS_CNI_EXECUTOR"] = executor
    try:
        done = subprocess.run(["ip", "netns", "exec", node_namespace, plugin_path()],
                              input=net_config(cni_env, prev_result), capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CniCallError(command, 999, f"plugin {PLUGIN} timed out after {timeout:.0f}s") from None
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        try:
            error = json.loads(out)
            raise CniCallError(command, int(error.get("code", 999)), error.get("msg", ""), error.get("details", ""))
        except ValueError:
            raise CniCallError(command, 999, (out or done.stderr.decode(errors="replace")).strip()
                               or f"plugin exited {done.returncode}") from None
    return json.loads(out) if out else None
