"""Network namespaces the lab owns: create, enter, configure, run in, delete, clean up.

Safety first (DESIGN.md principle 4): every name must carry the lab prefix (`mek-`), nothing here
ever acts on the root namespace, and cleanup is "delete every namespace with the prefix and every
process inside it", idempotent and safe after a crash.

Namespaces are made and removed with `ip netns` (so /run/netns is set up exactly as iproute2 does
it). Configuration happens in process: a thread `setns`es into the namespace just long enough to
open a netlink socket (pyroute2's IPRoute) or a listening socket, which stay bound to that
namespace afterwards. pyroute2's own netns helpers fork children and are avoided (see the
data-plane report, pitfall 10).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence

PREFIX = "mek-"
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
_NAME = re.compile(r"^mek-[a-z0-9][a-z0-9.-]{0,60}$")
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_lock = threading.Lock()


class NetnsError(RuntimeError):
    pass


def check_name(name: str) -> str:
    """Refuse any name without the lab prefix: the root namespace and others are never touched."""
    if not _NAME.match(name):
        raise NetnsError(f"refusing namespace name {name!r}: lab namespaces are named mek-<lowercase, digits, - .>")
    return name


def path(name: str) -> str:
    return os.path.join(NETNS_DIR, check_name(name))


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    if not prefix.startswith(PREFIX):
        raise NetnsError(f"prefix {prefix!r} must start with {PREFIX!r}")
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def create(name: str) -> None:
    """A new, empty namespace (lo down, nothing inherited that matters); existing ones are kept."""
    check_name(name)
    if exists(name):
        return
    _ip("netns", "add", name)


def _ip(*args: str, input: str | None = None) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, input=input, timeout=30)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def pids(name: str) -> list[int]:
    """Processes whose network namespace is this one (what `ip netns pids` prints)."""
    try:
        target = os.stat(path(name))
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(entry))
    return found


def delete(name: str) -> None:
    """Kill what runs inside (only lab processes can be there), then remove the namespace."""
    check_name(name)
    for _ in range(3):
        inside = [p for p in pids(name) if p != os.getpid()]
        for pid in inside:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not inside:
            break
        time.sleep(0.05)
    if exists(name):
        try:
            _ip("netns", "delete", name)
        except NetnsError:
            if exists(name):
                raise


def cleanup(prefix: str) -> list[str]:
    """Delete every namespace whose name starts with `prefix` (e.g. `mek-myeks-`); idempotent."""
    if not prefix.startswith(PREFIX) or len(prefix) <= len(PREFIX):
        raise NetnsError(f"cleanup needs a lab prefix such as mek-<cluster>-, got {prefix!r}")
    removed = []
    for name in list_namespaces(prefix):
        delete(name)
        removed.append(name)
    return removed


# --------------------------------------------------------------------------- being inside one
def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with this thread inside the namespace; always back to where it was."""
    target = os.open(path(name), os.O_RDONLY)
    home = os.open(f"/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


class _ThreadBound:
    """pyroute2 0.9 opens a fresh netlink socket for each *calling thread*, in that thread's own
    namespace: an IPRoute opened inside a lab namespace but used from another thread silently acts
    on the root namespace. This wrapper refuses any use from a thread other than the opener's."""

    def __init__(self, ipr: object, name: str):
        self._ipr, self._name, self._tid = ipr, name, threading.get_ident()

    def __getattr__(self, attr: str):
        if threading.get_ident() != self._tid:
            raise NetnsError(f"IPRoute of {self._name} used from another thread: it would act on that "
                             f"thread's namespace; open one per thread with iproute()")
        return getattr(self._ipr, attr)


@contextlib.contextmanager
def iproute(name: str) -> Iterator[object]:
    """A pyroute2 IPRoute bound to the namespace (opened inside it); use it only from this thread."""
    from pyroute2 import IPRoute

    with entered(name):
        ipr = IPRoute()
    try:
        yield _ThreadBound(ipr, name)
    finally:
        ipr.close()


def sysctl(name: str, key: str, value: str | int) -> None:
    """Write /proc/sys/<key with dots as slashes> as seen from inside the namespace."""
    if not key.startswith("net."):
        raise NetnsError(f"only network sysctls belong to a namespace, not {key!r}")
    with entered(name):
        with open("/proc/sys/" + key.replace(".", "/"), "w") as handle:
            handle.write(str(value))


def read_sysctl(name: str, key: str) -> str:
    with entered(name):
        with open("/proc/sys/" + key.replace(".", "/")) as handle:
            return handle.read().strip()


def run(name: str, argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """`ip netns exec NAME argv...`: what a user would type, so it can be reproduced by hand."""
    done = subprocess.run(["ip", "netns", "exec", check_name(name), *argv], capture_output=True, text=True,
                          input=input, timeout=timeout)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} in {name}: {(done.stderr or done.stdout).strip()}")
    return done


def popen(name: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", check_name(name), *argv], **kwargs)
