"""The checkpoint file `vpc-cni-ipam/1` (spec §4.5): which pod holds which address, so a restarted
ipamd gives every running pod back the address it has.

This module knows the format (byte-compatible with Go's json.Encoder), atomic writes, and the
stale-entry rule (a pod whose host veth is gone is dead). The datastore decides what goes in and
binds entries back to its CIDRs on restore (Datastore.restore).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from minieks.ipamd.eni import IPAMKey, IPAMMetadata

FORMAT_VERSION = "vpc-cni-ipam/1"


class CheckpointError(Exception):
    """The checkpoint cannot be used; str() is upstream's message."""


@dataclass(frozen=True)
class CheckpointEntry:
    """One assigned address; the IPAMKey fields are flattened into the JSON object."""

    key: IPAMKey
    ipv4: str = ""
    ipv6: str = ""
    allocation_timestamp: int = 0  # Unix nanoseconds
    metadata: IPAMMetadata = IPAMMetadata()

    @property
    def ip(self) -> str:
        return self.ipv4 or self.ipv6

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "networkName": self.key.network_name,
            "containerID": self.key.container_id,
            "ifName": self.key.if_name,
        }
        if self.ipv4:
            out["ipv4"] = self.ipv4
        if self.ipv6:
            out["ipv6"] = self.ipv6
        out["allocationTimestamp"] = self.allocation_timestamp
        meta: dict[str, object] = {}
        if self.metadata.k8s_pod_namespace:
            meta["k8sPodNamespace"] = self.metadata.k8s_pod_namespace
        if self.metadata.k8s_pod_name:
            meta["k8sPodName"] = self.metadata.k8s_pod_name
        if self.metadata.interfaces_count:
            meta["interfacesCount"] = self.metadata.interfaces_count
        out["metadata"] = meta
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> CheckpointEntry:
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise CheckpointError("datastore: error reading backing store: bad metadata")
        return cls(
            key=IPAMKey(str(obj.get("networkName", "")), str(obj.get("containerID", "")),
                        str(obj.get("ifName", ""))),
            ipv4=str(obj.get("ipv4", "") or ""),
            ipv6=str(obj.get("ipv6", "") or ""),
            allocation_timestamp=int(obj.get("allocationTimestamp", 0) or 0),
            metadata=IPAMMetadata(str(meta.get("k8sPodNamespace", "")), str(meta.get("k8sPodName", "")),
                                  int(meta.get("interfacesCount", 0) or 0)),
        )


@dataclass(frozen=True)
class CheckpointData:
    version: str = FORMAT_VERSION
    allocations: tuple[CheckpointEntry, ...] = ()


def encode(data: CheckpointData) -> bytes:
    """Compact JSON as Go's json.Encoder writes it: HTML-safe escapes, raw UTF-8, one trailing newline."""
    doc = {"version": data.version, "allocations": [e.to_json() for e in data.allocations]}
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return (text + "\n").encode("utf-8")


def decode(raw: bytes) -> CheckpointData:
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise CheckpointError(f"datastore: error reading backing store: {err}") from err
    if not isinstance(doc, dict):
        raise CheckpointError("datastore: error reading backing store: not a JSON object")
    entries = doc.get("allocations") or []
    return CheckpointData(version=str(doc.get("version", "")),
                          allocations=tuple(CheckpointEntry.from_json(e) for e in entries))


class BackingStore(Protocol):
    """Where a datastore keeps its checkpoint: a file in the lab, memory in the planner."""

    def save(self, data: CheckpointData) -> None: ...

    def load(self) -> CheckpointData | None: ...


class FileBackingStore:
    """The checkpoint on disk, rewritten whole and atomically (temp file, fsync, rename)."""

    def __init__(self, path: str):
        self.path = path

    def save(self, data: CheckpointData) -> None:
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(encode(data))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def load(self) -> CheckpointData | None:
        """None when the file does not exist (a fresh node)."""
        try:
            with open(self.path, "rb") as f:
                return decode(f.read())
        except FileNotFoundError:
            return None


class MemoryBackingStore:
    """A checkpoint kept in memory (model mode, tests); `fail_next` makes the next save fail."""

    def __init__(self, data: CheckpointData | None = None):
        self.data = data
        self.saves = 0
        self.fail_next: Exception | None = None

    def save(self, data: CheckpointData) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.data = data
        self.saves += 1

    def load(self) -> CheckpointData | None:
        return self.data


# --- stale entries: a pod is alive iff its host-side veth exists ---------------------------------

def pod_veth_suffix(namespace: str, pod_name: str) -> str:
    """The hash part of a pod's host veth name: sha1("<ns>.<name>")[:11]."""
    return hashlib.sha1(f"{namespace}.{pod_name}".encode()).hexdigest()[:11]


def pod_veth_name(prefix: str, namespace: str, pod_name: str, index: int = 0) -> str:
    """GeneratePodHostVethName: the n-th interface of a multi-NIC pod hashes "<name>.<n>"."""
    name = pod_name if index == 0 else f"{pod_name}.{index}"
    return prefix + pod_veth_suffix(namespace, name)


def veth_missing_error(entry: CheckpointEntry, host_links: Iterable[str]) -> str | None:
    """None when the entry's pod still has a host veth (any prefix) or carries no pod identity."""
    ns, name = entry.metadata.k8s_pod_namespace, entry.metadata.k8s_pod_name
    if not ns or not name:
        return None
    suffix = pod_veth_suffix(ns, name)
    if any(link.endswith(suffix) for link in host_links):
        return None
    return f"host-side veth not found for pod {ns}/{name}"


@dataclass(frozen=True)
class RuleDelete:
    """An `ip rule del` the caller must run for a stale pod (the datastore does no kernel I/O)."""

    priority: int
    table: str
    dst: str = ""
    src: str = ""


def stale_rule_deletes(ip: str) -> list[RuleDelete]:
    """The to-pod (512, main) and from-pod (1536, any table) rules of a dead pod's address."""
    bits = 128 if ":" in ip else 32
    return [RuleDelete(priority=512, table="main", dst=f"{ip}/{bits}"),
            RuleDelete(priority=1536, table="unspec", src=f"{ip}/{bits}")]


@dataclass
class RestoreReport:
    """What Datastore.restore did, for logs and for the caller's kernel clean-up."""

    restored: list[CheckpointEntry] = field(default_factory=list)
    stale: list[CheckpointEntry] = field(default_factory=list)
    unknown_ip: list[CheckpointEntry] = field(default_factory=list)
    rule_deletes: list[RuleDelete] = field(default_factory=list)
