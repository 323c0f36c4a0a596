"""`minieks node exec`, `pod exec` and `cleanup` where no kernel is needed: finding things in a
lab's registry, and the clear exit-2 errors for what is not there. (The kernel paths are in
test_lab_kernel.py.)"""

from __future__ import annotations

import json

import pytest

from minieks.cli import main
from minieks.fabric.command import find_node, find_pod
from minieks.fabric.lab import STATE_ROOT_ENV, state_dir
from minieks.usage import UsageError

NODE = {"name": "i-0abc", "instance_id": "i-0abc", "namespace": "mek-tcli1-n1", "primary_ip": "192.168.1.29",
        "subnet": "a", "socket": "/nonexistent", "cni_env": {}}
POD = {"namespace": "default", "name": "web", "node": "i-0abc", "netns": "mek-tcli1-n1-0123456789ab",
       "sandbox_id": "0" * 64, "ip": "192.168.1.63", "result": {}}
REGISTRY = {"lab": "tcli1", "nodes": {"i-0abc": NODE}, "pods": {"default/web": POD}}


@pytest.fixture
def registry(tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path))
    state_dir("tcli1").mkdir()
    (state_dir("tcli1") / "lab.json").write_text(json.dumps(REGISTRY))
    return REGISTRY


def test_a_node_is_found_by_any_of_its_names_and_a_pod_by_namespace_slash_name():
    for key in ("i-0abc", "mek-tcli1-n1", "n1", "192.168.1.29"):
        assert find_node(REGISTRY, key) is NODE
    assert find_pod(REGISTRY, "default/web") is POD and find_pod(REGISTRY, "web") is POD
    with pytest.raises(UsageError, match=r"has no node 'n2'; its nodes: i-0abc \(mek-tcli1-n1, 192.168.1.29\)"):
        find_node(REGISTRY, "n2")
    with pytest.raises(UsageError, match=r"has no pod 'kube-system/web'; its pods: default/web"):
        find_pod(REGISTRY, "kube-system/web")


@pytest.mark.parametrize("argv, message", [
    (["node", "exec", "--lab", "nosuch", "n1", "--", "true"], "no lab named 'nosuch' is running here"),
    (["pod", "exec", "--lab", "No-Such", "web", "--", "true"], "lab name 'No-Such'"),
    (["node", "exec", "--lab", "tcli1", "n9", "--", "true"], "lab 'tcli1' has no node 'n9'"),
    (["pod", "exec", "--lab", "tcli1", "default/db", "--", "true"], "lab 'tcli1' has no pod 'default/db'"),
    (["node", "exec", "--lab", "tcli1", "n1", "--"], "give the command after --"),
    (["node", "exec", "--lab", "tcli1", "n1", "--", "true"], "namespace mek-tcli1-n1 is gone"),
    (["pod", "exec", "--lab", "tcli1", "web", "--", "true"], "namespace mek-tcli1-n1-0123456789ab is gone"),
    (["cleanup", "--lab", "Bad!"], "lab name 'Bad!'"),
])
def test_what_is_not_there_is_a_clear_usage_error(registry, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minieks {argv[0]}: error: ") and message in err


def test_cleanup_says_what_it_removed_and_is_idempotent(registry, capsys):
    assert main(["cleanup", "--lab", "tcli1"]) == 0
    assert capsys.readouterr().out == f"removed {state_dir('tcli1')}\n"
    assert not state_dir("tcli1").exists()
    assert main(["cleanup", "--lab", "tcli1"]) == 0
    assert capsys.readouterr().out == "lab 'tcli1': nothing to remove\n"
