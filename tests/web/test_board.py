"""The board's snapshot from a minimal runtime: real EC2 state, a real ipamd datastore rendered as
ipamd's introspection renders it, and Kubernetes objects in an in-memory store."""

from minieks.web import slots
from minieks.web.board import Board, build_snapshot, pending_pods
from tests.web.fakes import NOW, SUBNET, FakeCluster


def board_of(cluster: FakeCluster) -> Board:
    return Board(cluster.runtime, fetch_enis=cluster.fetch_enis, clock=cluster.clock.now, max_age=0)


def states(eni: dict) -> dict[str, str]:
    return {s["ip"]: s["state"] for s in eni["slots"]}


def test_secondary_ips_assigned_warm_and_cooldown():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    ips = c.secondary_ips(node, ds, 5)
    web1 = c.run_pod(ds, "ip-a", "web-1")
    web2 = c.run_pod(ds, "ip-a", "web-2")
    c.run_pod(ds, "ip-a", "aws-node-x1", namespace="kube-system", host_network=True)
    c.delete_pod(ds, "web-2")                  # released now: cooling down for 30 s
    snap = board_of(c).snapshot()

    (view,) = snap["nodes"]
    assert (view["name"], view["instanceType"], view["zone"], view["primaryIp"]) == \
        ("ip-a", "t3.medium", "ap-northeast-2a", node.primary_ip)
    assert (view["maxPods"], view["maxEnis"], view["eniCount"], view["ready"]) == (17, 3, 1, True)
    assert view["podCount"] == 2               # web-1 and aws-node (host network counts too)
    (eni,) = view["enis"]
    assert eni["device"] == 0 and eni["primaryIp"] == node.primary_ip and eni["subnet"] == SUBNET
    assert [s["ip"] for s in eni["slots"]] == ips      # the primary address is no slot
    got = states(eni)
    assert got[web1] == slots.ASSIGNED
    assert got[web2] == slots.COOLDOWN
    assert sorted(got.values()).count(slots.WARM) == 3
    by_ip = {s["ip"]: s for s in eni["slots"]}
    assert by_ip[web1]["pod"] == "default/web-1"
    assert by_ip[web2]["pod"] is None and by_ip[web2]["cooldownUntil"] == NOW + 30
    assert view["counts"] == {"assigned": 1, "warm": 3, "cooldown": 1, "syncing": 0, "unknown": 0}
    assert [(p["name"], p["eni"]) for p in view["pods"]] == [("web-1", eni["id"])]
    assert [p["name"] for p in view["hostPods"]] == ["aws-node-x1"]
    assert view["ipamd"] == {"ok": True, "error": None}


def test_cooldown_ends_after_the_period():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    c.secondary_ips(node, ds, 2)
    ip = c.run_pod(ds, "ip-a", "web-1")
    c.delete_pod(ds, "web-1")
    board = board_of(c)
    assert states(board.snapshot()["nodes"][0]["enis"][0])[ip] == slots.COOLDOWN
    c.clock.advance(30)                         # upstream: still in cooldown at exactly the period
    assert states(board.snapshot()["nodes"][0]["enis"][0])[ip] == slots.COOLDOWN
    c.clock.advance(0.5)
    assert states(board.snapshot()["nodes"][0]["enis"][0])[ip] == slots.WARM


def test_prefix_expands_to_sixteen_slots_on_its_eni():
    c = FakeCluster()
    node, ds = c.add_node("ip-a", prefix_delegation=True, max_pods=110)
    eni1 = c.second_eni(node, ds)
    prefix = c.prefix(node, ds, device=1)
    first = c.run_pod(ds, "ip-a", "web-1")
    second = c.run_pod(ds, "ip-a", "web-2")
    c.delete_pod(ds, "web-1")
    view = board_of(c).snapshot()["nodes"][0]

    assert [e["device"] for e in view["enis"]] == [0, 1]
    eni = view["enis"][1]
    assert eni["id"] == eni1 and eni["prefixes"] == [prefix]
    assert len(eni["slots"]) == 16
    assert {s["prefix"] for s in eni["slots"]} == {prefix}
    network = prefix.split("/")[0]
    assert eni["slots"][0]["ip"] == network
    got = states(eni)
    assert got[second] == slots.ASSIGNED and got[first] == slots.COOLDOWN
    assert eni["counts"]["warm"] == 14
    assert view["enis"][0]["slots"] == []       # the primary ENI holds no prefix here


def test_address_in_ec2_not_yet_in_ipamd_is_syncing():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    c.secondary_ips(node, ds, 1)
    eni = c.eni_ids(node)[0]
    late = c.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)[
        "AssignedPrivateIpAddresses"][0]["PrivateIpAddress"]
    assert states(board_of(c).snapshot()["nodes"][0]["enis"][0])[late] == slots.SYNCING


def test_ipamd_not_answering_falls_back_to_pod_ips():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    c.secondary_ips(node, ds, 3)
    ip = c.run_pod(ds, "ip-a", "web-1")
    c.down.add(node.namespace)
    view = board_of(c).snapshot()["nodes"][0]
    assert view["ipamd"]["ok"] is False and "refused" in view["ipamd"]["error"]
    got = states(view["enis"][0])
    assert got.pop(ip) == slots.ASSIGNED
    assert set(got.values()) == {slots.UNKNOWN}
    assert next(s for s in view["enis"][0]["slots"] if s["ip"] == ip)["pod"] == "default/web-1"


def test_pending_reasons_from_scheduler_and_kubelet():
    message = ("0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: "
               "1 No preemption victims found for incoming pod.")
    unscheduled = {"metadata": {"name": "web-9", "namespace": "default", "uid": "u9"},
                   "spec": {}, "status": {"phase": "Pending", "conditions": [
                       {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}
    stuck = {"metadata": {"name": "web-8", "namespace": "default", "uid": "u8"},
             "spec": {"nodeName": "ip-a"}, "status": {"phase": "Pending"}}
    creating = {"metadata": {"name": "web-7", "namespace": "default", "uid": "u7"},
                "spec": {"nodeName": "ip-a"}, "status": {"phase": "Pending"}}
    running = {"metadata": {"name": "web-1", "namespace": "default", "uid": "u1"},
               "spec": {"nodeName": "ip-a"}, "status": {"phase": "Running"}}

    def event(name: str, uid: str, message: str, when: str) -> dict:
        return {"metadata": {"name": f"{name}.{when}", "namespace": "default"}, "reason": "FailedCreatePodSandBox",
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": name, "uid": uid},
                "message": message, "lastTimestamp": when}

    events = [event("web-8", "u8", "old failure", "2025-01-01T00:00:01Z"),
              event("web-8", "u8", "add cmd: failed to assign an IP address to container", "2025-01-01T00:00:09Z"),
              event("web-8", "other-uid", "a previous pod of that name", "2025-01-01T00:00:10Z")]
    got = {p["name"]: p for p in pending_pods([unscheduled, stuck, creating, running], events)}
    assert set(got) == {"web-9", "web-8", "web-7"}
    assert (got["web-9"]["reason"], got["web-9"]["message"], got["web-9"]["node"]) == \
        ("Unschedulable", message, None)
    assert (got["web-8"]["reason"], got["web-8"]["message"], got["web-8"]["node"]) == \
        ("FailedCreatePodSandBox", "add cmd: failed to assign an IP address to container", "ip-a")
    assert got["web-7"]["reason"] == "ContainerCreating"


def test_pending_area_in_the_snapshot_and_terminating_pods_are_left_out():
    c = FakeCluster()
    c.add_node("ip-a")
    c.store.create("pods", {"metadata": {"name": "lost", "namespace": "default"},
                            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}, namespace="default")
    c.store.mutate("pods", "default", "lost", lambda p: p.update(status={"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]}),
        part="status")
    snap = board_of(c).snapshot()
    assert snap["totals"] == {"nodes": 1, "pods": 0, "pending": 1}
    assert snap["pending"][0]["message"].endswith("didn't match Pod's node affinity/selector.")
    assert pending_pods([{"metadata": {"name": "x", "deletionTimestamp": "2025-01-01T00:00:00Z"},
                          "spec": {}, "status": {"phase": "Pending"}}], []) == []


def test_version_changes_only_with_content_and_snapshots_are_cached():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    c.secondary_ips(node, ds, 2)
    board = board_of(c)
    first = board.snapshot()
    c.clock.advance(1)
    second = board.snapshot()
    assert first["version"] == second["version"] and first["generatedAt"] != second["generatedAt"]
    c.run_pod(ds, "ip-a", "web-1")
    assert board.snapshot()["version"] != first["version"]

    calls = []
    cached = Board(c.runtime, fetch_enis=lambda ns, env: calls.append(ns) or c.fetch_enis(ns, env),
                   clock=c.clock.now, max_age=0.5)
    cached.snapshot(), cached.snapshot()
    assert len(calls) == 1
    c.clock.advance(0.6)
    cached.snapshot()
    assert len(calls) == 2


def test_node_without_kubelet_and_empty_cluster():
    c = FakeCluster()
    c.store.create("nodes", {"metadata": {"name": "ip-gone"}, "status": {}})
    view = board_of(c).snapshot()["nodes"][0]
    assert view["enis"] == [] and view["ipamd"]["ok"] is False
    empty = build_snapshot("x", [], [], [], {}, {}, NOW)
    assert empty["nodes"] == [] and empty["pending"] == [] and empty["totals"]["pods"] == 0


def test_parse_go_time():
    assert slots.parse_go_time("0001-01-01T00:00:00Z") is None
    assert slots.parse_go_time("2025-06-15T15:06:40Z") == 1_750_000_000.0
    assert abs(slots.parse_go_time("2025-06-15T15:06:40.25Z") - 1_750_000_000.25) < 1e-6


def test_secondary_slots_in_address_order():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    ips = c.secondary_ips(node, ds, 3)
    meta = {"interface-id": "eni-x", "local-ipv4": node.primary_ip, "ipv4s": [node.primary_ip, *reversed(ips)]}
    got = slots.eni_slots(meta, None, False, {}, NOW, 30)
    assert [s["ip"] for s in got] == ips


def test_address_held_for_a_deleted_pod_is_marked():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    c.secondary_ips(node, ds, 2)
    ip = c.run_pod(ds, "ip-a", "web-1")
    kept = c.run_pod(ds, "ip-a", "web-2")
    c.store.delete("pods", "default", "web-1", grace_period=0)     # gone from Kubernetes, no CNI DEL yet
    by_ip = {s["ip"]: s for s in board_of(c).snapshot()["nodes"][0]["enis"][0]["slots"]}
    assert (by_ip[ip]["state"], by_ip[ip]["pod"], by_ip[ip]["podGone"]) == (slots.ASSIGNED, "default/web-1", True)
    assert by_ip[kept]["podGone"] is False


def test_failure_cause_is_the_plugins_words():
    from minieks.kube.kubelet import sandbox_message
    from minieks.web.board import failure_cause

    text = sandbox_message("f" * 64, "add cmd: failed to assign an IP address to container")
    assert failure_cause(text) == "add cmd: failed to assign an IP address to container"
    assert failure_cause("0/3 nodes are available: 3 Too many pods.") == "0/3 nodes are available: 3 Too many pods."
