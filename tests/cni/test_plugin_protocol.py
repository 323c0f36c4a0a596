"""The aws-cni executable's CNI protocol (skel): VERSION, environment and stdin checks, error JSON.

None of these reach the kernel: each fails (or answers) before the plugin touches a namespace,
and the plugin refuses to act outside a lab namespace anyway.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from minieks.cni import plugin, skel

AWS_CNI = Path(sys.executable).with_name("aws-cni")
CONF = {"cniVersion": "0.4.0", "name": "aws-cni", "type": "aws-cni", "vethPrefix": "eni", "mtu": "9001"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c0ffee", "CNI_NETNS": "/run/netns/mek-nothere-pod",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin",
       "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
       "MINIEKS_IPAMD_SOCKET": "/run/mek-does-not-exist/ipamd.sock"}


def run(stdin: object = CONF, **env: str) -> tuple[int, dict]:
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    code, out = plugin.run({**ENV, **env}, data)
    return code, json.loads(out)


def test_version_from_the_executable():
    done = subprocess.run([str(AWS_CNI)], env={"CNI_COMMAND": "VERSION"}, capture_output=True, text=True,
                          timeout=30, input='{"cniVersion":"1.0.0"}')
    assert done.returncode == 0
    assert done.stdout == '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}\n'


def test_errors_are_json_on_stdout_with_exit_1():
    done = subprocess.run([str(AWS_CNI)], env={k: v for k, v in ENV.items() if k != "CNI_NETNS"},
                          capture_output=True, text=True, timeout=30, input=json.dumps(CONF))
    assert done.returncode == 1
    assert done.stdout == '{\n    "code": 4,\n    "msg": "required env variables [CNI_NETNS] missing"\n}'


@pytest.mark.parametrize("stdin, code, msg", [
    (b"{bad", 6, "error unmarshall network config: invalid character 'b' looking for beginning of object key string"),
    (b"", 6, "error unmarshall network config: unexpected end of JSON input"),
    (b'{"name": "aws-cni"} x', 6, "error unmarshall network config: invalid character 'x' after top-level value"),
    ({"cniVersion": "0.4.0", "type": "aws-cni"}, 7, "missing network name:"),
    ({**CONF, "mtu": 9001}, 999, "add cmd: error loading config from args: json: cannot unmarshal number "
                                 "into Go struct field NetConf.mtu of type string"),
    ({**CONF, "vethPrefix": "abcde"}, 999, "conf.VethPrefix can be at most 4 characters long"),
    ({**CONF, "cniVersion": "0.2.0"}, 1, "incompatible CNI versions"),
])
def test_bad_stdin(stdin, code, msg):
    got_code, error = run(stdin)
    assert got_code == 1
    assert (error["code"], error["msg"]) == (code, msg)


def test_incompatible_version_details():
    _, error = run({**CONF, "cniVersion": "0.2.0"})
    assert error["details"] == 'config is "0.2.0", plugin supports ["0.3.0" "0.3.1" "0.4.0" "1.0.0"]'


@pytest.mark.parametrize("env, code, msg", [
    ({"CNI_COMMAND": "SPIN"}, 4, "unknown CNI_COMMAND: SPIN"),
    ({"CNI_CONTAINERID": "bad id"}, 4, "invalid characters in containerID"),
    ({"CNI_IFNAME": "a-very-long-ifname"}, 4, "interface name is too long"),
    ({"CNI_ARGS": "K8S_POD_NAME=a;COLOR=blue"}, 999,
     'add cmd: failed to load k8s config from arg: ARGS: unknown args ["COLOR=blue"]'),
])
def test_bad_environment(env, code, msg):
    got_code, error = run(CONF, **env)
    assert (got_code, error["code"], error["msg"]) == (1, code, msg)


def test_check_needs_a_version_that_has_check():
    _, error = run({**CONF, "cniVersion": "0.3.1"}, CNI_COMMAND="CHECK")
    assert (error["code"], error["msg"]) == (1, "config version does not allow CHECK")


def test_refuses_to_run_outside_a_lab_namespace():
    """In the test process's own (root) namespace nothing is done, not even the ipamd call."""
    for command in ("ADD", "DEL", "CHECK"):
        code, error = run(CONF, CNI_COMMAND=command)
        assert code == 1 and error["code"] == 999
        assert error["msg"].startswith("aws-cni (minieks) only runs inside a lab node namespace")


def test_skel_version_json_is_go_encoder_output():
    assert skel.version_json().endswith("}\n") and json.loads(skel.version_json())["cniVersion"] == "1.0.0"
