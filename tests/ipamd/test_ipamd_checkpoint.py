"""The checkpoint file `vpc-cni-ipam/1` and restore (spec §4.5) against the upstream vectors."""

import json
import logging
import os
import pathlib

import pytest
import yaml

from minieks.clock import VirtualClock
from minieks.ipamd import checkpoint as ckpt
from minieks.ipamd.checkpoint import (CheckpointData, CheckpointEntry, CheckpointError, FileBackingStore,
                                     MemoryBackingStore, RuleDelete)
from minieks.ipamd.datastore import Datastore, DatastoreError
from minieks.ipamd.eni import IPAMKey, IPAMMetadata

VECTORS = yaml.safe_load((pathlib.Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
DS = {v["id"]: v for v in VECTORS["datastore"]}
T0 = 1_700_000_000.0


def datastore(store, *cidrs, pd=False):
    ds = Datastore(VirtualClock(T0), pd_enabled=pd, backing_store=store, unix_offset=0)
    ds.add_eni("eni-1", 0, is_primary=True)
    for cidr in cidrs:
        ds.add_ipv4_cidr("eni-1", cidr, cidr.endswith("/28"))
    return ds


def test_checkpoint_file_format_example_is_byte_exact(tmp_path):
    example = VECTORS["checkpoint_file_format"]["example"]
    path = tmp_path / "ipam.json"
    ds = datastore(FileBackingStore(str(path)), "192.168.9.106/32")
    ds.assign_pod_ipv4_address(
        IPAMKey("aws-cni", "5a1f9118a7125f87b4b0f2f601c0b55cfab8bcf28963bcf7c4ece3109a8b6b86", "eth0"),
        IPAMMetadata("kube-system", "coredns-57ff979f67-qqbdh", 1))
    assert path.read_text() == example  # compact JSON, one trailing newline
    assert ckpt.decode(path.read_bytes()) == ckpt.decode(example.encode())


def test_metadata_is_omitempty_and_empty_allocations_is_a_list(tmp_path):
    path = tmp_path / "ipam.json"
    ds = datastore(FileBackingStore(str(path)), "10.0.0.1/32")
    key = IPAMKey("aws-cni", "c1", "eth0")
    ds.assign_pod_ipv4_address(key)
    assert json.loads(path.read_text())["allocations"][0]["metadata"] == {}
    ds.unassign_pod_ip_address(key)
    assert path.read_text() == '{"version":"vpc-cni-ipam/1","allocations":[]}\n'


def test_go_json_escapes():
    entry = CheckpointEntry(IPAMKey("a<b>&", "ü", "eth0\u2028"), ipv4="10.0.0.1", allocation_timestamp=5)
    text = ckpt.encode(CheckpointData(allocations=(entry,))).decode()
    assert '"networkName":"a\\u003cb\\u003e\\u0026"' in text
    assert '"containerID":"ü"' in text and '"ifName":"eth0\\u2028"' in text
    assert ckpt.decode(text.encode()).allocations[0] == entry


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "ipam.json"
    ds = datastore(FileBackingStore(str(path)), "10.0.0.1/32", "10.0.0.2/32")
    for n in range(2):
        ds.assign_pod_ipv4_address(IPAMKey("aws-cni", f"c{n}", "eth0"))
    assert sorted(os.listdir(tmp_path)) == ["ipam.json"]
    assert len(json.loads(path.read_text())["allocations"]) == 2


def test_failed_file_write_rolls_back_the_assignment(tmp_path):
    path = tmp_path / "missing-dir" / "ipam.json"
    ds = datastore(FileBackingStore(str(path)), "10.0.0.1/32")
    with pytest.raises(OSError):
        ds.assign_pod_ipv4_address(IPAMKey("aws-cni", "c", "eth0"))
    assert ds.assigned == 0 and ds.eni("eni-1").ipv4_cidrs["10.0.0.1/32"].addresses == {}


@pytest.mark.parametrize("case", VECTORS["veth_names"], ids=lambda c: c["id"])
def test_veth_names(case):
    given = case["input"]
    if "expected_suffix" in case:
        assert ckpt.pod_veth_suffix(given["namespace"], given["pod_name"]) == case["expected_suffix"]
    else:
        assert ckpt.pod_veth_name(given["prefix"], given["namespace"], given["pod_name"],
                                  given["index"]) == case["expected"]


@pytest.mark.parametrize("case", DS["ds-veth-validation"]["cases"], ids=str)
def test_veth_validation(case):
    if case["pod"] == "(no metadata)":
        meta = IPAMMetadata()
    else:
        ns, name = case["pod"].split("/")
        meta = IPAMMetadata(ns, name)
    entry = CheckpointEntry(IPAMKey("aws-cni", "c", "eth0"), ipv4="10.0.0.1", metadata=meta)
    assert ckpt.veth_missing_error(entry, case["host_links"]) == case.get("expected_error")


def _entries(allocations):
    out = []
    for n, a in enumerate(allocations):
        meta = IPAMMetadata(*a["pod"].split("/")) if a["pod"] else IPAMMetadata()
        out.append(CheckpointEntry(IPAMKey("aws-cni", f"c{n}", "eth0"), ipv4=a["ip"],
                                   allocation_timestamp=1_600_000_000_000_000_000 + n, metadata=meta))
    return tuple(out)


@pytest.mark.parametrize("case", DS["ds-normalize-checkpoint"]["cases"], ids=lambda c: c["name"])
def test_restore_prunes_pods_without_host_veth(case):
    allocations = case.get("allocations", [{"ip": "192.168.9.106", "pod": "kube-system/coredns-57ff979f67-qqbdh"}])
    store = MemoryBackingStore(CheckpointData(allocations=_entries(allocations)))
    ds = Datastore(VirtualClock(T0), backing_store=store, unix_offset=0)
    ds.add_eni("eni-1", 0, is_primary=True)
    for a in allocations:
        ds.add_ipv4_cidr("eni-1", a["ip"] + "/32")
    if "expected_error" in case:
        def failing_link_list():
            raise OSError(case["expected_error"])
        with pytest.raises(OSError, match=case["expected_error"]):
            ds.restore(failing_link_list)
        return
    report = ds.restore(lambda: case["host_links"])
    assert [e.ipv4 for e in report.restored] == case["expected_kept"]
    expected_rules = [RuleDelete(priority=r["priority"], table=r["table"], dst=r.get("to", ""), src=r.get("from", ""))
                      for r in case["expected_rule_deletes"]]
    assert report.rule_deletes == expected_rules
    assert sorted(e.ipv4 for e in store.data.allocations) == sorted(case["expected_kept"])  # rewritten
    assert ds.assigned == len(case["expected_kept"])


def test_restore_keeps_original_timestamps_and_drops_unknown_ips(caplog):
    caplog.set_level(logging.INFO, logger="minieks.ipamd.datastore")
    entries = (
        CheckpointEntry(IPAMKey("aws-cni", "a", "eth0"), ipv4="10.0.0.3", allocation_timestamp=1_650_000_000_123_456_789,
                        metadata=IPAMMetadata("ns", "a", 1)),
        CheckpointEntry(IPAMKey("aws-cni", "b", "eth0"), ipv4="10.9.9.9", allocation_timestamp=1),
    )
    store = MemoryBackingStore(CheckpointData(allocations=entries))
    ds = datastore(store, "10.0.0.0/28", pd=True)
    report = ds.restore()  # no link list: no pruning
    assert [e.ipv4 for e in report.restored] == ["10.0.0.3"]
    assert [e.ipv4 for e in report.unknown_ip] == ["10.9.9.9"]
    assert "datastore: Sandbox aws-cni/b/eth0 uses unknown IP Address 10.9.9.9 - presuming stale/dead" in caplog.text
    assert store.data.allocations == entries[:1]  # the exact original timestamp survives the rewrite
    # the restored pod keeps its address: an ADD retry for the same key is idempotent
    assert ds.assign_pod_ipv4_address(IPAMKey("aws-cni", "a", "eth0")).ip == "10.0.0.3"
    assert ds.assign_pod_ipv4_address(IPAMKey("aws-cni", "new", "eth0")).ip == "10.0.0.0"
    assert ds.unassign_pod_ip_address(IPAMKey("aws-cni", "a", "eth0")).interfaces_count == 1


def test_restore_version_mismatch_is_an_error():
    store = MemoryBackingStore(CheckpointData(version="vpc-cni-ipam/0"))
    with pytest.raises(CheckpointError, match=r"unknown backing store format \(vpc-cni-ipam/0 != vpc-cni-ipam/1\)"):
        datastore(store).restore()


def test_restore_duplicate_entry_is_an_error():
    entry = CheckpointEntry(IPAMKey("aws-cni", "a", "eth0"), ipv4="10.0.0.1")
    store = MemoryBackingStore(CheckpointData(allocations=(entry, entry)))
    with pytest.raises(DatastoreError, match="^datastore: IP already in data store$"):
        datastore(store, "10.0.0.1/32").restore()


def test_restore_without_file_is_a_fresh_node(tmp_path):
    ds = datastore(FileBackingStore(str(tmp_path / "ipam.json")), "10.0.0.1/32")
    report = ds.restore([])
    assert report.restored == [] and not (tmp_path / "ipam.json").exists()


def test_file_round_trip_through_restart(tmp_path):
    path = str(tmp_path / "ipam.json")
    first = datastore(FileBackingStore(path), "10.0.0.0/28", pd=True)
    for name in ("p0", "p1"):
        first.assign_pod_ipv4_address(IPAMKey("aws-cni", name, "eth0"), IPAMMetadata("default", name))
    before = pathlib.Path(path).read_bytes()
    second = datastore(FileBackingStore(path), "10.0.0.0/28", pd=True)
    links = ["eth0", ckpt.pod_veth_name("eni", "default", "p0"), ckpt.pod_veth_name("eni", "default", "p1")]
    assert len(second.restore(links).restored) == 2
    assert pathlib.Path(path).read_bytes() == before
