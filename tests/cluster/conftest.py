import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from minieks.cluster.runtime import ClusterRuntime
from minieks.cluster.spec import ClusterSpec
from minieks.fabric.lab import cleanup

KUBECTL = shutil.which("kubectl")


def root() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


needs_kernel = pytest.mark.skipif(not root(), reason="needs root, ip and network namespaces")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


class Kubectl:
    def __init__(self, kubeconfig: str, cache: str):
        self.env = dict(os.environ, KUBECONFIG=kubeconfig)
        self.cache = cache

    def __call__(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        done = subprocess.run([KUBECTL, "--cache-dir", self.cache, *args], capture_output=True, text=True,
                              input=input, env=self.env, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def json(self, *args: str):
        return json.loads(self(*args, "-o", "json").stdout)


def wait_for(predicate, timeout: float = 60, what: str = "condition", interval: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def cluster_factory(root_dir: Path):
    """`make(**ClusterSpec fields) -> (runtime, kubectl)`: clusters started in this process under the state
    root `root_dir` (MINIEKS_STATE_ROOT while the block runs); every one is stopped and removed at the end."""
    previous = os.environ.get("MINIEKS_STATE_ROOT")
    os.environ["MINIEKS_STATE_ROOT"] = str(root_dir)
    started: list[ClusterRuntime] = []

    def make(**spec_fields) -> tuple[ClusterRuntime, Kubectl]:
        name = spec_fields.pop("name", "t" + secrets.token_hex(3))
        runtime = ClusterRuntime(ClusterSpec(name=name, **spec_fields))
        started.append(runtime)
        runtime.start()
        return runtime, Kubectl(str(runtime.kubeconfig), str(root_dir / f"cache-{name}"))

    try:
        yield make
    finally:
        for runtime in started:
            try:
                runtime.stop()
            except Exception:               # a half-started cluster: cleanup below removes what it made
                pass
            finally:
                cleanup(runtime.spec.name)
        if previous is None:
            os.environ.pop("MINIEKS_STATE_ROOT", None)
        else:
            os.environ["MINIEKS_STATE_ROOT"] = previous


@pytest.fixture
def make_cluster(tmp_path_factory):
    """Start clusters in this process with a private state root; always removed at the end."""
    with cluster_factory(tmp_path_factory.mktemp("state")) as make:
        yield make
