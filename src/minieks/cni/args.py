"""CNI_ARGS parsing (`K=V;K=V`) into the Kubernetes pod identity the plugin sends to ipamd.

Follows libcni's LoadArgs: each pair must be exactly one `=`, unknown keys are an error unless
IgnoreUnknown is true, so a runtime passing odd args gets the error the real plugin gives.
"""

from __future__ import annotations

from dataclasses import dataclass

_KNOWN = ("K8S_POD_NAME", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID")


class CniArgsError(ValueError):
    """CNI_ARGS could not be loaded (text as libcni words it)."""


@dataclass(frozen=True)
class K8sArgs:
    K8S_POD_NAME: str = ""
    K8S_POD_NAMESPACE: str = ""
    K8S_POD_INFRA_CONTAINER_ID: str = ""
    K8S_POD_UID: str = ""
    IgnoreUnknown: bool = False


def _go_quote_list(items: list[str]) -> str:
    quoted = " ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items)
    return f"[{quoted}]"


def parse_cni_args(text: str) -> K8sArgs:
    """Parse CNI_ARGS; "" yields empty args, as in the runtime's plain DEL."""
    if text == "":
        return K8sArgs()
    values: dict[str, object] = {}
    unknown: list[str] = []
    for pair in text.split(";"):
        parts = pair.split("=")
        if len(parts) != 2:
            raise CniArgsError(f'ARGS: invalid pair "{pair}"')
        key, value = parts
        if key == "IgnoreUnknown":
            lowered = value.lower()
            if lowered in ("1", "true"):
                values[key] = True
            elif lowered in ("0", "false"):
                values[key] = False
            else:
                raise CniArgsError(
                    f'ARGS: error parsing value of pair "{pair}": '
                    f"boolean unmarshal error: invalid input {value}")
        elif key in _KNOWN:
            values[key] = value
        else:
            unknown.append(pair)
    args = K8sArgs(**values)  # type: ignore[arg-type]
    if unknown and not args.IgnoreUnknown:
        raise CniArgsError(f"ARGS: unknown args {_go_quote_list(unknown)}")
    return args
