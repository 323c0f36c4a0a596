"""A cluster driven as a user drives it: `minieks up/down/status` as separate processes (so the supervisor
can be killed), under a private state root."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.invariants import leftovers
from tests.cluster.conftest import Kubectl, wait_for


@dataclass
class CliCluster:
    workdir: Path
    node_groups: str = "- {name: ng1, instanceType: t3.medium, desiredCapacity: 2}"
    name: str = field(default_factory=lambda: "k" + secrets.token_hex(4))

    @property
    def root(self) -> Path:
        return self.workdir / "state"

    @property
    def state(self) -> Path:
        return self.root / f"mek-{self.name}"

    @property
    def spec_file(self) -> Path:
        return self.workdir / f"{self.name}.yaml"

    def minieks(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ, MINIEKS_STATE_ROOT=str(self.root))
        return subprocess.run([sys.executable, "-m", "minieks.cli", *args], capture_output=True, text=True, env=env,
                              timeout=timeout)

    def up(self) -> Kubectl:
        self.spec_file.write_text(f"name: {self.name}\nnodeGroups:\n{self.node_groups}\n")
        done = self.minieks("up", "-f", str(self.spec_file))
        assert done.returncode == 0, done.stderr
        return self.kubectl()

    def resume(self) -> None:
        done = self.minieks("up", "--cluster", self.name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"cluster {self.name}: running"), done.stdout

    def kubectl(self) -> Kubectl:
        endpoints = json.loads((self.state / "endpoints.json").read_text())
        return Kubectl(endpoints["kubeconfig"], str(self.workdir / f"cache-{self.name}"))

    def supervisor_pid(self) -> int:
        pid = int((self.state / "supervisor.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"up" in cmdline and b"--foreground" in cmdline and self.name.encode() in cmdline, cmdline
        return pid

    def ipamd_pids(self) -> list[int]:
        return [json.loads(p.read_text())["pid"] for p in (self.state / "pids").glob("ipamd-*.pid")]

    @staticmethod
    def alive(pids: list[int]) -> list[str]:
        """The command lines of those of `pids` still running (not zombies)."""
        left = []
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline:
                left.append(f"{pid}: " + cmdline.replace(b"\0", b" ").decode(errors="replace"))
        return left

    def wait_gone(self, pids: list[int], what: str) -> None:
        try:
            wait_for(lambda: not self.alive(pids), timeout=30, what=what)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}: {self.alive(pids)}") from None

    def down(self) -> None:
        """`minieks down`, then checks nothing is left (call in a finally: it also cleans up)."""
        from minieks.fabric.lab import cleanup
        done = self.minieks("down", "--cluster", self.name)
        cleanup(self.name)
        assert done.returncode == 0 and f"cluster {self.name} deleted" in done.stdout, done.stderr
        assert leftovers(self.name, self.state) == []
