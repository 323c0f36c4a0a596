"""`minieks up / down / status / kubeconfig`: the cluster's supervisor process and its handles.

`up` starts the supervisor in the background (a new session, its output in the state dir's
supervisor.log) and returns once the cluster is ready; `--foreground` runs it in the terminal.
One supervisor per cluster (an exclusive lock on the state dir). A `kill -9` of the supervisor
takes its ipamd children with it (they die with their parent); `minieks up` again resumes the same
cluster from the SQLite state; `down` stops it and removes every namespace, process and file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from minieks.cluster.spec import ClusterSpec, load
from minieks.fabric.lab import cleanup, state_dir
from minieks.usage import UsageError

READY_TIMEOUT = 300


def _pid_file(state: Path) -> Path:
    return state / "supervisor.pid"


def _is_supervisor(pid: int) -> bool:
    """Whether pid is a live supervisor (checked against its command line, as pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"minieks" in cmdline and b"up" in cmdline


def running_pid(name: str) -> int | None:
    """The supervisor's pid if it runs."""
    try:
        pid = int(_pid_file(state_dir(name)).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _is_supervisor(pid) else None


def saved_spec(name: str) -> ClusterSpec | None:
    try:
        return ClusterSpec.model_validate_json((state_dir(name) / "cluster.json").read_text())
    except OSError:
        return None


def resolve_spec(path: str | None, name: str | None) -> ClusterSpec:
    """The file's cluster, or the one already created under that name, or the seed's default."""
    if path:
        spec = load(path)
        existing = saved_spec(spec.name)
        if existing and existing.model_dump() != spec.model_dump():
            raise UsageError(f"cluster {spec.name} already exists with a different specification; "
                             f"run 'minieks down --cluster {spec.name}' first")
        return spec
    return saved_spec(name or "myeks") or ClusterSpec(**({"name": name} if name else {}))


def up(spec: ClusterSpec, foreground: bool) -> str:
    if os.geteuid() != 0:
        raise UsageError("minieks up needs root: nodes and pods are network namespaces (run it with sudo)")
    state = state_dir(spec.name)
    if running_pid(spec.name):
        return status(spec.name)
    state.mkdir(parents=True, exist_ok=True)
    (state / "cluster.json").write_text(spec.model_dump_json(by_alias=True, indent=1))
    if foreground:
        run_supervisor(spec, echo=True)
        return ""
    log = state / "supervisor.log"
    offset = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "minieks.cli", "up", "--foreground", "--cluster", spec.name],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline, shown = time.time() + READY_TIMEOUT, 0
    while time.time() < deadline:
        lines = log.read_bytes()[offset:].decode(errors="replace").splitlines()
        for line in lines[shown:]:
            print(line, file=sys.stderr, flush=True)            # progress, as the supervisor reports it
        shown = len(lines)
        if any("cluster ready" in line for line in lines):
            return status(spec.name)
        if proc.poll() is not None:
            raise UsageError(f"the supervisor stopped before the cluster was ready; see {log}")
        time.sleep(0.2)
    raise UsageError(f"the cluster was not ready after {READY_TIMEOUT}s; see {log}")


def run_supervisor(spec: ClusterSpec, echo: bool = False) -> None:
    """The supervisor itself: hold the lock, run the cluster until SIGTERM/SIGINT."""
    import logging

    from minieks.cluster.runtime import ClusterRuntime

    state = state_dir(spec.name)
    state.mkdir(parents=True, exist_ok=True)
    lock = open(state / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(f"another supervisor runs cluster {spec.name}") from None
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _pid_file(state).write_text(f"{os.getpid()}\n")
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    runtime = ClusterRuntime(spec, progress=lambda m: print(f"[minieks] {m}", flush=True))
    try:
        runtime.start()
        print(f"[minieks] kubeconfig: {runtime.kubeconfig}", flush=True)
        done.wait()
    finally:
        print("[minieks] stopping", flush=True)
        runtime.stop()
        _pid_file(state).unlink(missing_ok=True)
        lock.close()


def down(name: str) -> str:
    """Stop the supervisor (by its pid) and remove the cluster: namespaces, processes, files."""
    pid = running_pid(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        # wait for the process itself, not its pid file: that goes before the interpreter has exited
        deadline = time.time() + 60
        while _is_supervisor(pid) and time.time() < deadline:
            time.sleep(0.2)
        if _is_supervisor(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    removed = cleanup(name)
    return f"cluster {name} deleted ({len(removed)} namespaces removed)\n"


def endpoints(name: str) -> dict:
    try:
        return json.loads((state_dir(name) / "endpoints.json").read_text())
    except (OSError, ValueError):
        raise UsageError(f"no cluster named {name} (run 'minieks up')") from None


def status(name: str) -> str:
    pid = running_pid(name)
    if not pid:
        if (state_dir(name) / "cluster.json").exists():
            return f"cluster {name}: stopped (state kept; 'minieks up' resumes it, 'minieks down' removes it)\n"
        return f"cluster {name}: not created ('minieks up' creates it)\n"
    ep = endpoints(name)
    return (f"cluster {name}: running (supervisor pid {pid})\n"
            f"  Kubernetes API  {ep['api_url']}\n"
            f"  EC2 endpoint    {ep['ec2_url']}  (aws --endpoint-url {ep['ec2_url']} ec2 ...)\n"
            f"  kubeconfig      export KUBECONFIG={ep['kubeconfig']}\n"
            + (f"  board           {ep['board_url']}\n" if ep.get("board_url") else ""))


def kubeconfig(name: str, print_content: bool) -> str:
    path = Path(endpoints(name)["kubeconfig"])
    return path.read_text() if print_content else f"{path}\n"


def _admin(name: str, method: str, path: str, body: dict | None = None) -> dict:
    from minieks.cluster.admin import call
    if not running_pid(name):
        raise UsageError(f"cluster {name} is not running ('minieks up' first)")
    ep = endpoints(name)
    token = (state_dir(name) / "pki" / "token").read_text().strip()
    try:
        return call(ep["admin_url"], token, method, path, body)
    except RuntimeError as err:
        raise UsageError(str(err)) from None


def nodegroups(name: str) -> str:
    groups = _admin(name, "GET", "/nodegroups")["nodegroups"]
    lines = [f"{'NODEGROUP':10} {'INSTANCE TYPE':14} {'NODES':6} NODE NAMES"]
    for g in groups:
        lines.append(f"{g['name']:10} {g['instanceType']:14} {len(g['nodes']):<6} {', '.join(g['nodes'])}")
    return "\n".join(lines) + "\n"


def create_nodegroup(name: str, group: str, instance_type: str, nodes: int) -> str:
    out = _admin(name, "POST", "/nodegroups", {"name": group, "instanceType": instance_type, "desiredCapacity": nodes})
    return "".join(f"created node {n} in node group {group}\n" for n in out["nodes"])


def delete_nodegroup(name: str, group: str) -> str:
    out = _admin(name, "DELETE", f"/nodegroups/{group}")
    return "".join(f"drained and terminated node {n}\n" for n in out["deleted"]) + f"node group {group} deleted\n"
