"""The CNI exec protocol as libcni's skel implements it (CNI spec 1.0.0): the environment, the
stdin config checks, version negotiation, dispatch, and how results and errors are printed.

aws-cni is a skel plugin, so the runtime sees skel's behaviour before the plugin's: missing
CNI_* variables, unparsable stdin, bad names and incompatible versions are refused here with
skel's codes and texts; the plugin's own errors come back as code 999 (ErrInternal), exit 1.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from minieks.cni import gojson
from minieks.cni.result import CniError, ErrorCode

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
CURRENT_VERSION = "1.0.0"
_REQUIRED = {
    "CNI_COMMAND": ("ADD", "CHECK", "DEL"),
    "CNI_CONTAINERID": ("ADD", "CHECK", "DEL"),
    "CNI_NETNS": ("ADD", "CHECK"),
    "CNI_IFNAME": ("ADD", "CHECK", "DEL"),
    "CNI_ARGS": (),
    "CNI_PATH": ("ADD", "CHECK", "DEL"),
}
_NAME_OK = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


@dataclass(frozen=True)
class CmdArgs:
    """skel.CmdArgs: what the runtime passed in the environment and on stdin."""

    command: str
    container_id: str
    netns: str
    if_name: str
    args: str
    path: str
    stdin: bytes


def cmd_args_from_env(env: Mapping[str, str], stdin: bytes) -> CmdArgs:
    """Read CNI_*; the ones a command needs must be set (VERSION reads no stdin)."""
    command = env.get("CNI_COMMAND", "")
    missing = [name for name, commands in _REQUIRED.items()
               if not env.get(name) and (command in commands or name == "CNI_COMMAND")]
    if missing:
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
                       f"required env variables [{','.join(missing)}] missing")
    return CmdArgs(command, env.get("CNI_CONTAINERID", ""), env.get("CNI_NETNS", ""),
                   env.get("CNI_IFNAME", ""), env.get("CNI_ARGS", ""), env.get("CNI_PATH", ""),
                   b"" if command == "VERSION" else stdin)


def go_json_error(text: bytes | str) -> str | None:
    """The text Go's json.Unmarshal gives for input Python cannot parse, else None."""
    try:
        json.loads(text)
    except UnicodeDecodeError:
        return "invalid character in string literal"
    except json.JSONDecodeError as err:
        doc, pos = err.doc, err.pos
        if pos >= len(doc.rstrip()) and "Extra data" not in err.msg:
            return "unexpected end of JSON input"
        char = doc[pos]
        where = {"Expecting value": "looking for beginning of value",
                 "Expecting property name enclosed in double quotes":
                     "looking for beginning of object key string",
                 "Expecting ':' delimiter": "after object key",
                 "Extra data": "after top-level value"}.get(err.msg)
        if where is None and err.msg.startswith("Expecting ',' delimiter"):
            where = "after object key:value pair" if _innermost(doc, pos) == "{" else "after array element"
        return f"invalid character {_go_char(char)} {where or 'in string literal'}"
    return None


def _innermost(doc: str, pos: int) -> str:
    depth: list[str] = []
    in_string = escaped = False
    for ch in doc[:pos]:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth.append(ch)
        elif ch in "]}" and depth:
            depth.pop()
    return depth[-1] if depth else ""


def _go_char(ch: str) -> str:
    """Go's quoteChar: 'x', with ' and \\ escaped and control characters spelled out."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    if ch.isprintable():
        return f"'{ch}'"
    return "'" + json.dumps(ch)[1:-1] + "'"


def validate_config(stdin: bytes) -> None:
    """skel's validateConfig: JSON with a usable network name."""
    error = go_json_error(stdin)
    if error is not None:
        raise CniError(ErrorCode.DECODING_FAILURE, f"error unmarshall network config: {error}")
    parsed = json.loads(stdin)
    name = parsed.get("name") if isinstance(parsed, dict) else None
    if not isinstance(name, str) or name == "":
        raise CniError(ErrorCode.INVALID_NETWORK_CONFIG, "missing network name:")
    if not _NAME_OK.match(name):
        raise CniError(ErrorCode.INVALID_NETWORK_CONFIG, "invalid characters found in network name", name)


def validate_container_id(container_id: str) -> None:
    if container_id == "":
        raise CniError(ErrorCode.UNKNOWN_CONTAINER, "missing containerID")
    if not _NAME_OK.match(container_id):
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, "invalid characters in containerID",
                       container_id)


def validate_interface_name(name: str) -> None:
    if name == "":
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, "interface name is empty")
    if len(name) > 15:
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, "interface name is too long",
                       "interface name should be less than 16 characters")
    if name in (".", ".."):
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, "interface name is . or ..")
    if any(ch in "/:" or ch.isspace() for ch in name):
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
                       "interface name contains / or : or whitespace characters")


def config_version(stdin: bytes) -> str:
    """ConfigDecoder: the config's cniVersion ("0.1.0" when absent)."""
    parsed = json.loads(stdin)
    version = parsed.get("cniVersion") if isinstance(parsed, dict) else None
    if version is not None and not isinstance(version, str):
        raise CniError(ErrorCode.DECODING_FAILURE, "decoding version from network config: json: cannot "
                       f"unmarshal {gojson.type_name(version)} into Go struct field "
                       ".cniVersion of type string")
    return version or "0.1.0"


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CniError(ErrorCode.DECODING_FAILURE, f"invalid version {version!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def check_version(version: str) -> None:
    if version not in SUPPORTED_VERSIONS:
        supported = " ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
        raise CniError(ErrorCode.INCOMPATIBLE_CNI_VERSION, "incompatible CNI versions",
                       f'config is "{version}", plugin supports [{supported}]')


def version_json() -> str:
    """What VERSION prints (json.Encoder: compact, newline-terminated)."""
    return gojson.dumps({"cniVersion": CURRENT_VERSION,
                         "supportedVersions": list(SUPPORTED_VERSIONS)}) + "\n"


Handler = Callable[[CmdArgs], str]


def dispatch(env: Mapping[str, str], stdin: bytes, add: Handler, delete: Handler,
             check: Handler) -> tuple[int, str]:
    """Run one CNI command; (exit code, stdout). Handlers return stdout or raise CniError."""
    try:
        args = cmd_args_from_env(env, stdin)
        if args.command != "VERSION":
            validate_config(args.stdin)
            validate_container_id(args.container_id)
            validate_interface_name(args.if_name)
        if args.command == "VERSION":
            return 0, version_json()
        handler = {"ADD": add, "DEL": delete, "CHECK": check}.get(args.command)
        if handler is None:
            raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, f"unknown CNI_COMMAND: {args.command}")
        version = config_version(args.stdin)
        if args.command == "CHECK" and _version_tuple(version) < (0, 4, 0):
            raise CniError(ErrorCode.INCOMPATIBLE_CNI_VERSION, "config version does not allow CHECK")
        check_version(version)
        return 0, handler(args)
    except CniError as err:
        return 1, err.to_json()
    except Exception as err:  # noqa: BLE001 - a runtime must always get error JSON, never a traceback
        traceback.print_exc(file=sys.stderr)
        return 1, CniError(ErrorCode.INTERNAL, str(err) or type(err).__name__).to_json()
