"""LoadNetConf: the aws-cni plugin's network configuration from stdin, with upstream's defaults.

Go's encoding/json decides what is accepted (keys match case-insensitively, a wrongly typed
value is an error, null keeps the default), and the plugin then refuses a vethPrefix longer than
4 characters; the error texts are what kubelet shows on the pod (spec §7.1, §9).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from minieks.cni.gojson import type_name
from minieks.cni.result import Result
from minieks.netsetup.mtu import get_pod_mtu

DEFAULT_MTU = "9001"
DEFAULT_VETH_PREFIX = "eni"
DEFAULT_SG_MODE = "strict"
POD_ANNOTATIONS_KEY = "io.kubernetes.cri.pod-annotations"
NIC_CONFIG_ANNOTATION = "k8s.amazonaws.com/nicConfig"
MULTI_NIC_ATTACHMENT = "multi-nic-attachment"

# JSON key → attribute, for the string fields of NetConf (embedded types.NetConf first).
_STRING_FIELDS = {
    "cniVersion": "cni_version", "name": "name", "type": "type",
    "vethPrefix": "veth_prefix", "mtu": "mtu", "podSGEnforcingMode": "pod_sg_enforcing_mode",
    "pluginLogFile": "plugin_log_file", "pluginLogLevel": "plugin_log_level",
}


class NetConfError(ValueError):
    """The config was refused; str() is the plugin's error text."""


@dataclass
class NetConf:
    cni_version: str = ""
    name: str = ""
    type: str = ""
    veth_prefix: str = DEFAULT_VETH_PREFIX
    mtu: str = DEFAULT_MTU
    pod_sg_enforcing_mode: str = DEFAULT_SG_MODE
    plugin_log_file: str = ""
    plugin_log_level: str = ""
    pod_annotations: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    prev_result: Result | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def pod_mtu(self) -> int:
        """The MTU ADD uses: conf mtu through GetPodMTU (invalid or out of range → 9001)."""
        return get_pod_mtu(self.mtu)

    @property
    def requires_multi_nic(self) -> bool:
        return self.pod_annotations.get(NIC_CONFIG_ANNOTATION) == MULTI_NIC_ATTACHMENT


def _lookup(data: dict[str, Any], key: str) -> tuple[bool, Any]:
    """Go's field matching: exact key first, then any key equal ignoring case (last one wins)."""
    if key in data:
        return True, data[key]
    found, value = False, None
    for candidate, candidate_value in data.items():
        if candidate.lower() == key.lower():
            found, value = True, candidate_value
    return found, value


def _unmarshal_error(got: Any, path: str, want: str) -> NetConfError:
    return NetConfError("add cmd: error loading config from args: json: cannot unmarshal "
                        f"{type_name(got)} into Go struct field {path} of type {want}")


def load_net_conf(data: bytes | str) -> NetConf:
    """Parse stdin config; errors read "add cmd: error loading config from args: ..." or
    "conf.VethPrefix can be at most 4 characters long"."""
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NetConfError(f"add cmd: error loading config from args: {exc}") from None
    if parsed is None:
        parsed = {}
    if not isinstance(parsed, dict):
        raise NetConfError("add cmd: error loading config from args: json: cannot unmarshal "
                           f"{type_name(parsed)} into Go value of type main.NetConf")
    conf = NetConf(raw=parsed)
    for key, attr in _STRING_FIELDS.items():
        found, value = _lookup(parsed, key)
        if not found or value is None:
            continue
        if not isinstance(value, str):
            raise _unmarshal_error(value, f"NetConf.{key}", "string")
        setattr(conf, attr, value)
    found, runtime = _lookup(parsed, "runtimeConfig")
    if found and runtime is not None:
        if not isinstance(runtime, dict):
            raise _unmarshal_error(runtime, "NetConf.runtimeConfig", "main.RuntimeConfig")
        found, annotations = _lookup(runtime, POD_ANNOTATIONS_KEY)
        if found and annotations is not None:
            if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
                raise _unmarshal_error(annotations, f"NetConf.runtimeConfig.{POD_ANNOTATIONS_KEY}",
                                       "string")
            conf.pod_annotations = dict(annotations)
    found, caps = _lookup(parsed, "capabilities")
    if found and isinstance(caps, dict):
        conf.capabilities = {k: bool(v) for k, v in caps.items()}
    found, prev = _lookup(parsed, "prevResult")
    if found and prev is not None:
        try:
            conf.prev_result = Result.from_dict(prev)
        except (KeyError, TypeError, ValueError) as exc:
            raise NetConfError(f"could not parse prevResult: {exc}") from None
    if len(conf.veth_prefix) > 4:
        raise NetConfError("conf.VethPrefix can be at most 4 characters long")
    return conf
