"""Fixtures for the kube tests: an in-memory store, and one HTTPS API server per test module
(with a seeded node and a local exec handler) that the real kubectl talks to."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterator

import pytest

from minieks.kube import ApiServer, Store

from .helpers import KUBECTL, Kubectl, node


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store()
    yield s
    s.close()


def local_exec(namespace: str, pod: str, container: str, argv: list[str], tty: bool) -> list[str]:
    """Exec handler for tests: run the command here (the lab runs it in the pod's netns)."""
    return argv


def kubectl_missing() -> bool:
    if not (os.path.exists(KUBECTL) and shutil.which(KUBECTL)):
        return True
    try:
        subprocess.run([KUBECTL, "version", "--client"], capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return True
    return False


needs_kubectl = pytest.mark.skipif(kubectl_missing(), reason="the real kubectl is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, ApiServer, Kubectl]]:
    """A persistent store served over HTTPS (EKS-like version 1.31), kubectl with a fresh cache."""
    tmp = tmp_path_factory.mktemp("kube")
    store = Store(str(tmp / "cluster.db"))
    store.create("nodes", node())
    server = ApiServer(store, state_dir=tmp / "state", exec_handler=local_exec).start()
    kubeconfig = tmp / "kubeconfig"
    server.write_kubeconfig(kubeconfig)
    try:
        yield store, server, Kubectl(kubeconfig, tmp / "cache")
    finally:
        server.stop()
        store.close()
