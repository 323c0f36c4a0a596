"""AddNetwork + DelNetwork latency over ipamd's unix socket, from a warm datastore (target: p50
under 2 ms per call on one reused channel).

Three figures: calls on one channel (a long-lived client), a fresh channel per ADD+DEL pair (what
each plugin exec pays to dial), and the handler in process (no gRPC) for the floor.
Logging is off, as ipamd's file logging is not what is measured here.

Then the pool loop on a virtual clock: simulated node-hours per second of CPU.

Run: .venv/bin/python benchmarks/ipamd.py [--pairs 2000]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from minieks.clock import RealClock
from minieks.cni.ipamd_client import IpamdClient
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.rpc import rpc_pb2
from minieks.ipamd.rpc_handler import VERSION, RpcHandler
from minieks.ipamd.rpc_server import RpcServer


def warm_datastore() -> Datastore:
    """A t3.medium-like node: 3 ENIs × 5 secondary IPs; cooldown 0 so addresses recycle."""
    ds = Datastore(RealClock(), ip_cooldown_period=0)
    for device in range(3):
        ds.add_eni(f"eni-{device}", device, is_primary=device == 0)
        for n in range(5):
            ds.add_ipv4_cidr(f"eni-{device}", f"10.0.{device}.{10 + n}/32")
    return ds


def requests(i: int) -> tuple[rpc_pb2.AddNetworkRequest, rpc_pb2.DelNetworkRequest]:
    key = dict(ContainerID=f"sandbox-{i:06d}", IfName="eth0", NetworkName="aws-cni", ClientVersion=VERSION)
    return (rpc_pb2.AddNetworkRequest(K8S_POD_NAME=f"pod-{i}", K8S_POD_NAMESPACE="default",
                                      Netns=f"/var/run/netns/cni-{i}", **key),
            rpc_pb2.DelNetworkRequest(K8S_POD_NAME=f"pod-{i}", K8S_POD_NAMESPACE="default",
                                      Reason="PodDeleted", **key))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:6.3f} ms  p99 {p99 * 1000:6.3f} ms  (n={len(ordered)})"


def timed(call, *args) -> float:
    start = time.perf_counter()
    reply = call(*args)
    elapsed = time.perf_counter() - start
    if not reply.Success:
        raise SystemExit(f"call failed: {reply}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    handler = RpcHandler(warm_datastore(), IpamdConfig(enable_ipv4=True), vpc_cidrs=["10.0.0.0/16"])
    with tempfile.TemporaryDirectory(prefix="ipamd-bench-") as tmp:
        server = RpcServer(handler, str(Path(tmp) / "ipamd.sock"))
        server.start()
        try:
            adds, dels = [], []
            with IpamdClient(server.socket_path, timeout=5) as client:
                for i in range(200):  # warm up the channel and the interpreter
                    add, delete = requests(i)
                    client.add_network(add)
                    client.del_network(delete)
                for i in range(args.pairs):
                    add, delete = requests(i)
                    adds.append(timed(client.add_network, add))
                    dels.append(timed(client.del_network, delete))
            fresh = []
            for i in range(min(args.pairs, 300)):
                add, delete = requests(i)
                start = time.perf_counter()
                with IpamdClient(server.socket_path, timeout=5) as client:
                    client.add_network(add)
                    client.del_network(delete)
                fresh.append(time.perf_counter() - start)
        finally:
            server.stop()
    local = []
    for i in range(args.pairs):
        add, delete = requests(i)
        local.append(timed(handler.add_network, add) + timed(handler.del_network, delete))
    print("ipamd gRPC over a unix socket, warm datastore (15 /32s)")
    print(f"  AddNetwork, one channel         {percentiles(adds)}")
    print(f"  DelNetwork, one channel         {percentiles(dels)}")
    print(f"  ADD+DEL, new channel per pair   {percentiles(fresh)}")
    print(f"  ADD+DEL, handler in process     {percentiles(local)}")
    print(f"  target: AddNetwork p50 < 2 ms -> {'met' if statistics.median(adds) < 0.002 else 'MISSED'}")


def simulated_node_hours() -> None:
    """The pool loop in virtual time: how many node-hours of ipamd one second of CPU simulates."""
    import logging
    import time

    from minieks.ipamd.simulate import NodeSimulation, env_for

    logging.getLogger("minieks").setLevel(logging.CRITICAL)
    logging.getLogger("ipamd").setLevel(logging.CRITICAL)
    node = NodeSimulation("m5.large", env_for(), max_pods=29)
    start_cpu, start_virtual = time.process_time(), node.clock.now()
    for n in range(12):                     # a day with churn: pods come and go every two hours
        for _ in range(10):
            node.add_pod()
        for _ in range(1440 // 2):
            node.ipamd.run_cycle()          # 5 s a cycle: 2 h of virtual time
        for key in node.pods[-10:]:
            node.ipamd.ds.unassign_pod_ip_address(key)
        del node.pods[-10:]
    cpu = time.process_time() - start_cpu
    hours = (node.clock.now() - start_virtual) / 3600
    print(f"virtual clock: {hours:.1f} node-hours of ipamd (pool loop every 5 s, pods churning) in "
          f"{cpu:.2f} s of CPU: {hours / cpu:,.0f} node-hours per second")


if __name__ == "__main__":
    main()
    simulated_node_hours()
